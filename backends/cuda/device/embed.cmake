# backends/cuda/device/embed.cmake -- turns a device source file into a C
# header holding its text as a byte array, at build time:
#   cmake -DIN=mc_prelude.cuh -DOUT=gen/mc_prelude_cuh.h -DNAME=mc_prelude_cuh -P embed.cmake
# writes `static const char NAME[] = {..., 0};` (NUL-terminated; a byte
# array, since C11 promises string literals of only 4095 characters).
# A leading /* ... */ comment -- the file's own documentation -- is not
# embedded; every byte after the line that closes it is, unchanged.
if(NOT DEFINED IN OR NOT DEFINED OUT OR NOT DEFINED NAME)
  message(FATAL_ERROR "embed.cmake: usage: cmake -DIN=FILE -DOUT=HEADER -DNAME=ARRAY -P embed.cmake")
endif()
file(READ "${IN}" text)
set(off 0)
string(SUBSTRING "${text}" 0 2 head)
if(head STREQUAL "/*")
  string(FIND "${text}" "*/\n" end)
  if(end LESS 0)
    message(FATAL_ERROR "embed.cmake: ${IN}: the leading comment is not closed by a line ending in */")
  endif()
  math(EXPR off "${end} + 3")
endif()
file(READ "${IN}" hex OFFSET ${off} HEX)
# 16 bytes a line, each as 0xNN,
string(REPEAT "[0-9a-f]" 32 line)
string(REGEX REPLACE "(${line})" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(base "${IN}" NAME)
file(WRITE "${OUT}.tmp"
     "/* ${NAME} -- generated from ${base} by embed.cmake; do not edit. */\n"
     "static const char ${NAME}[] = {\n${bytes}\n0};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
