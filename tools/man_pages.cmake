# Writes the man pages of the built `shmbus` with help2man, one per command: shmbus(1) from
# `shmbus --help` (with tools/shmbus.h2m: exit status, files) and shmbus-SUB(1) from
# `shmbus SUB --help` for every subcommand, nested ones too (shmbus-journal-dump(1)). The
# subcommands are read from the "Subcommands:" list of each help text, so a new one gets its page
# without editing this file.
#   cmake -DSHMBUS=<binary> -DHELP2MAN=<help2man> -DOUTPUT_DIR=<dir> -DMAIN_INCLUDE=<h2m>
#         -DWORK_DIR=<dir> -P man_pages.cmake
cmake_minimum_required(VERSION 3.25)

execute_process(COMMAND ${SHMBUS} version --json OUTPUT_VARIABLE version_json
                COMMAND_ERROR_IS_FATAL ANY)
string(JSON version GET "${version_json}" version)

file(MAKE_DIRECTORY ${OUTPUT_DIR} ${WORK_DIR})
file(GLOB stale_pages ${OUTPUT_DIR}/shmbus*.1)  # a removed subcommand loses its page
if(stale_pages)
  file(REMOVE ${stale_pages})
endif()

# The subcommands `shmbus <words> --help` lists: "name;description;name;description;...".
function(list_subcommands words out)
  execute_process(COMMAND ${SHMBUS} ${words} --help OUTPUT_VARIABLE help COMMAND_ERROR_IS_FATAL ANY)
  # List separators and brackets would split or glue CMake list items; they never appear in a
  # subcommand's name and only reword a description.
  string(REPLACE ";" "," help "${help}")
  string(REPLACE "[" "(" help "${help}")
  string(REPLACE "]" ")" help "${help}")
  string(REPLACE "\n" ";" lines "${help}")
  set(in_list FALSE)
  set(found "")
  foreach(line IN LISTS lines)
    if(line STREQUAL "Subcommands:")
      set(in_list TRUE)
    elseif(in_list AND line MATCHES "^  ([a-z][a-z0-9-]*) +(.*)$")
      list(APPEND found "${CMAKE_MATCH_1}" "${CMAKE_MATCH_2}")
    elseif(in_list AND line MATCHES "^  ([a-z][a-z0-9-]*)$")
      list(APPEND found "${CMAKE_MATCH_1}" "the shmbus ${words} ${CMAKE_MATCH_1} command")
    elseif(in_list AND NOT line MATCHES "^   ")  # a wrapped description continues indented
      set(in_list FALSE)
    endif()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

# Every subcommand path below `words`, depth first: "journal", "journal dump", ... as
# "journal|<description>" entries (a path's words joined by spaces).
function(collect_pages words out)
  list_subcommands("${words}" subcommands)
  set(pages "")
  while(subcommands)
    list(POP_FRONT subcommands name description)
    set(path ${words} ${name})
    list(JOIN path " " joined)
    list(APPEND pages "${joined}|${description}")
    collect_pages("${path}" nested)
    list(APPEND pages ${nested})
  endwhile()
  set(${out} "${pages}" PARENT_SCOPE)
endfunction()

collect_pages("" pages)

set(references "")
foreach(page IN LISTS pages)
  string(REGEX REPLACE "\\|.*$" "" path "${page}")
  string(REPLACE " " "-" page_name "shmbus-${path}")
  list(APPEND references ".BR ${page_name} (1)")
endforeach()
list(JOIN references ",\n" see_also)

function(run_help2man page_name help_option name include)
  execute_process(
    COMMAND ${HELP2MAN} --no-info --no-discard-stderr "--help-option=${help_option}"
            "--version-string=${page_name} (shmbus) ${version}" "--name=${name}"
            --include=${include} --output=${OUTPUT_DIR}/${page_name}.1 ${SHMBUS}
    COMMAND_ERROR_IS_FATAL ANY)
endfunction()

file(READ ${MAIN_INCLUDE} main_include)
file(WRITE ${WORK_DIR}/shmbus.h2m "${main_include}\n[SEE ALSO]\n${see_also}\n")
run_help2man(shmbus --help "a shared-memory message bus for processes on one host"
             ${WORK_DIR}/shmbus.h2m)

file(WRITE ${WORK_DIR}/subcommand.h2m "[SEE ALSO]\n.BR shmbus (1)\n")
foreach(page IN LISTS pages)
  string(REGEX REPLACE "\\|.*$" "" path "${page}")
  string(REGEX REPLACE "^[^|]*\\|" "" description "${page}")
  string(REPLACE " " "-" page_name "shmbus-${path}")
  run_help2man(${page_name} "${path} --help" "${description}" ${WORK_DIR}/subcommand.h2m)
endforeach()
