# Writes a C++ source defining `std::string_view sweep::report::assets::${NAME}()` with the bytes of
# ${INPUT} (empty when INPUT is empty). Run by CMakeLists.txt at build time: cmake -P embed.cmake.
if(INPUT)
  file(READ "${INPUT}" hex HEX)
else()
  set(hex "")
endif()
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by embed.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace sweep::report::assets {\n"
  "namespace { const char kBytes[] = {${bytes} 0}; }\n"
  "std::string_view ${NAME}() { return std::string_view(kBytes, ${size}); }\n"
  "}  // namespace sweep::report::assets\n")
