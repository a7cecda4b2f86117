// minivlm: the tool binary. `minivlm <command> [options]`; `minivlm help` lists the commands.
#include <cstdio>
#include <exception>

#include "core/process_env.h"
#include "tools/command.h"

int main(int argc, char** argv) {
  minivlm::ensure_passive_openmp_wait(argv);
  using minivlm::cli::commands;
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help") {
    std::printf("usage: minivlm <command> [options]\n\ncommands:\n");
    for (const auto& [name, cmd] : commands())
      std::printf("  %-14s %s\n", name.c_str(), cmd.help.c_str());
    return argc < 2 ? 2 : 0;
  }
  auto it = commands().find(argv[1]);
  if (it == commands().end()) {
    std::fprintf(stderr, "minivlm: unknown command '%s' (run 'minivlm help' for the list)\n",
                 argv[1]);
    return 2;
  }
  try {
    return it->second.run(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minivlm %s: error: %s\n", argv[1], e.what());
    return 1;
  }
}
