#include "infer/serve/server.h"

namespace minivlm::serve {

std::string_view chat_page() {
  static constexpr char kPage[] =
#include "chat_page.inc"
      ;
  return {kPage, sizeof(kPage) - 1};
}

}  // namespace minivlm::serve
