# backends/cuda/device/embed.cmake -- turns a device source file into a C
# header holding its text as a byte array, at build time:
#   cmake -DIN=mc_prelude.cuh -DOUT=gen/mc_prelude_cuh.h -DNAME=mc_prelude_cuh -P embed.cmake
# writes `static const char NAME[] = {..., 0};` (NUL-terminated; a byte
# array, since C11 promises string literals of only 4095 characters).
# A leading /* ... */ comment -- the file's own documentation -- is not
# embedded; every byte after the line that closes it is, unchanged, but for
# X-macro tables of the IR (ir/*.def) included in an initializer:
#     #define M(a, b) b,
#     <prefix>{
#     #include "path/to/table.def"
#     <spaces>};
#     #undef M
# becomes the one line `<prefix>{<values>};`: the argument named b of each
# M(...) row of the table (a line of the .def starting with M( holds one or
# more rows), the values of one line of the .def joined by ",", the lines
# by ", ".  So the file compiles alone (nvcc) with the table included, and
# the embedded text holds the table's values written out.
cmake_minimum_required(VERSION 3.20)
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
file(READ "${IN}" text OFFSET ${off})

# the X-macro tables, expanded
set(id "[A-Za-z_][A-Za-z0-9_]*")
set(table_re "#define (${id})\\(([^)\n]*)\\) (${id}),\n([^\n]*){\n#include \"([^\"\n]*)\"\n *};\n#undef (${id})\n")
get_filename_component(dir "${IN}" DIRECTORY)
while(TRUE)
  string(REGEX MATCH "${table_re}" block "${text}")
  if(NOT block)
    break()
  endif()
  set(macro "${CMAKE_MATCH_1}")
  set(field "${CMAKE_MATCH_3}")
  set(prefix "${CMAKE_MATCH_4}")
  set(def "${dir}/${CMAKE_MATCH_5}")
  string(REPLACE " " "" params "${CMAKE_MATCH_2}")
  string(REPLACE "," ";" params "${params}")
  list(FIND params "${field}" idx)
  if(NOT CMAKE_MATCH_6 STREQUAL "${macro}" OR idx LESS 0)
    message(FATAL_ERROR "embed.cmake: ${IN}: a table of ${def} needs `#define ${macro}(params) param,` before "
                        "and `#undef ${macro}` after it")
  endif()
  if(NOT EXISTS "${def}")
    message(FATAL_ERROR "embed.cmake: ${IN}: no table ${def}")
  endif()
  file(STRINGS "${def}" rows REGEX "^${macro}\\(")
  set(lines)
  foreach(row IN LISTS rows)
    string(REGEX MATCHALL "${macro}\\([^)]*\\)" calls "${row}")
    set(vals)
    foreach(call IN LISTS calls)
      string(REGEX REPLACE "^${macro}\\((.*)\\)$" "\\1" args "${call}")
      string(REPLACE " " "" args "${args}")
      string(REPLACE "," ";" args "${args}")
      list(GET args ${idx} v)
      list(APPEND vals "${v}")
    endforeach()
    list(JOIN vals "," vals)
    list(APPEND lines "${vals}")
  endforeach()
  list(JOIN lines ", " values)
  string(REPLACE "${block}" "${prefix}{${values}};\n" text "${text}")
endwhile()
string(HEX "${text}" hex)
# 16 bytes a line, each as 0xNN,
string(REPEAT "[0-9a-f]" 32 line)
string(REGEX REPLACE "(${line})" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(base "${IN}" NAME)
file(WRITE "${OUT}.tmp"
     "/* ${NAME} -- generated from ${base} by embed.cmake; do not edit. */\n"
     "static const char ${NAME}[] = {\n${bytes}\n0};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
