// The commands people can type, as help lists them and as unknown words are matched against.
#pragma once

#include <string>
#include <vector>

namespace deputy::bot {

struct CommandInfo {
  std::string words;        // e.g. "create opportunity"
  std::string usage;        // e.g. "create opportunity <name> <amount> [close=YYYY-MM-DD]"
  std::string description;  // one line
  std::string app;          // display name of the app it acts in, empty for built-ins
  bool personal = false;    // runs as the person who asked
};

class CommandCatalog {
 public:
  virtual ~CommandCatalog() = default;
  virtual std::vector<CommandInfo> commands() const = 0;
};

const std::vector<CommandInfo>& builtin_commands();

// Nearest known command to what was typed, or empty when nothing is close enough.
std::string suggest(const std::string& typed, const std::vector<std::string>& known);

}  // namespace deputy::bot
