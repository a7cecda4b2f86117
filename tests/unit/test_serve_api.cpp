// The request side of `minivlm serve` (infer/serve/api.h) without a server: base64 against RFC
// 4648's test vectors, the checks of a chat-completions body (each refusal an HTTP status and the
// field it names), image URLs and the directory --allow-files opens, and the bodies the fuzzer
// found.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "infer/serve/api.h"

namespace minivlm::serve {
namespace {

const std::string kImages = std::string(MINIVLM_SOURCE_DIR) + "/tests/fixtures/images";
const std::string kPhoto = kImages + "/image-04-yellow-car.jpg";

TEST(ServeApi, Base64DecodesRfc4648VectorsAndRefusesTheRest) {
  // RFC 4648 §10.
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"Zg==", "f"},
                                                         {"Zm8=", "fo"},
                                                         {"Zm9v", "foo"},
                                                         {"Zm9vYg==", "foob"},
                                                         {"Zm9vYmE=", "fooba"},
                                                         {"Zm9vYmFy", "foobar"}};
  for (const auto& [in, out] : vectors) {
    const auto got = decode_base64(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_EQ(*got, out) << in;
  }
  EXPECT_EQ(decode_base64("Zg"), "f");  // padding is optional
  for (const char* bad : {"Z", "Zg=", "Zm9v!", "Zm 9v", "Z===", "Zg==Zg==", "=Zg=", "Zm9vY"})
    EXPECT_FALSE(decode_base64(bad).has_value()) << bad;
}

// The status and param of the ApiError that parsing `body` throws.
std::pair<int, std::string> refusal(const std::string& body, const RequestLimits& limits = {}) {
  try {
    parse_chat_request(body, "m", "<image>\n", limits);
  } catch (const ApiError& e) {
    EXPECT_FALSE(std::string(e.what()).empty());
    EXPECT_EQ(e.body()["error"]["message"], e.what());
    return {e.status, e.param};
  }
  ADD_FAILURE() << "accepted: " << body;
  return {0, ""};
}

TEST(ServeApi, RefusesEachBadFieldNamingIt) {
  EXPECT_EQ(refusal("{").first, 400);
  EXPECT_EQ(refusal("84E44444").first, 400);  // a number past a double (found by the fuzzer)
  EXPECT_EQ(refusal(std::string(200, '[') + std::string(200, ']')).first, 400);  // too deep
  EXPECT_EQ(refusal("[]"), std::make_pair(400, std::string("body")));
  EXPECT_EQ(refusal("{}"), std::make_pair(400, std::string("messages")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": 5}]})"),
            std::make_pair(400, std::string("messages[0].content")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})"),
            std::make_pair(400, std::string("messages[0].content[0].text")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "hi"}], "model": "x"})"),
            std::make_pair(404, std::string("model")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 3})"),
            std::make_pair(400, std::string("temperature")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5})"),
            std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "hi"}], "tools": []})"),
            std::make_pair(400, std::string("tools")));
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "an <image> here"}]})"),
            std::make_pair(400, std::string("messages[0].content")));
  const std::string image_part =
      R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ")";
  EXPECT_EQ(refusal(image_part + R"(https://example.com/a.png"}}]}]})"),
            std::make_pair(400, std::string("messages[0].content[0].image_url.url")));
  EXPECT_EQ(refusal(image_part + R"(data:image/png;base64,***"}}]}]})").first, 400);
  EXPECT_EQ(refusal(image_part + kPhoto + R"("}}]}]})").first, 400);  // no --allow-files
}

TEST(ServeApi, ReadsFieldsAndImagesInPlaceholderOrder) {
  RequestLimits limits;
  limits.allow_files = kImages;
  const ChatRequest r = parse_chat_request(
      R"({"model": "m", "temperature": 0, "max_completion_tokens": 7, "stop": "x", "seed": 3,
          "messages": [{"role": "developer", "content": "Be brief."},
                       {"role": "user", "content": [{"type": "text", "text": "Look: "},
                        {"type": "image_url", "image_url": {"url": "file://)" +
          kPhoto + R"("}}, {"type": "text", "text": "What is it?"}]}]})",
      "m", "<image>\n", limits);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Look: <image>\nWhat is it?");
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_GT(r.images[0].width, 0);
  EXPECT_TRUE(r.sampling.greedy);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.seed, 3u);
}

TEST(ServeApi, FilesOnlyInsideTheAllowedDirectoryAndWithinTheLimits) {
  RequestLimits limits;
  limits.allow_files = kImages;
  EXPECT_GT(load_image_url(kPhoto, limits).width, 0);
  const auto status = [&](const std::string& url, const RequestLimits& l) {
    try {
      load_image_url(url, l);
    } catch (const ApiError& e) {
      return e.status;
    }
    return 200;
  };
  EXPECT_EQ(status(kImages + "/../../CMakeLists.txt", limits), 400);  // .. out of the directory
  EXPECT_EQ(status("file:///etc/passwd", limits), 400);
  EXPECT_EQ(status(kImages + "/README.md", limits), 400);  // inside, but no image
  RequestLimits small = limits;
  small.max_image_bytes = 1000;
  EXPECT_EQ(status(kPhoto, small), 413);
  RequestLimits few = limits;
  few.max_image_pixels = 100 * 100;
  EXPECT_EQ(status(kPhoto, few), 413);
}

TEST(ServeApi, ClientMessagesLoseTheSourceLocation) {
  EXPECT_EQ(client_message(std::runtime_error("data/image_decode.cpp:212: cannot decode image x")),
            "cannot decode image x");
  EXPECT_EQ(client_message(std::runtime_error("plain: message")), "plain: message");
}

}  // namespace
}  // namespace minivlm::serve
