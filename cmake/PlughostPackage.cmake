# plughost_add_package(<target> SOURCES <src...> [DIR <package dir>])
#
# `cmake --install` puts the staged package in
# ${PLUGHOST_INSTALL_PACKAGES_DIR}/<name>: through find_package(plughost)
# /var/lib/plughost/packages, where the installed host reads what an
# operator installs, unless CMAKE_INSTALL_PREFIX was given (plughostConfig);
# else lib/plughost/packages below the prefix (/usr/lib/plughost/packages
# for the packages shipped with the host; `pkg-config --variable=packagesdir
# plughost` names it), in
# the install component ${PLUGHOST_INSTALL_COMPONENT} (default: the package
# name). A directory that sets PLUGHOST_NO_INSTALL builds without installing
# (examples, test fixtures).
#
# Builds a plughost package from the directory holding its package.ini
# (default: the current source directory). Name and version are read from
# package.ini and compiled in as PH_PACKAGE_NAME / PH_PACKAGE_VERSION, so
# they are written once. The .so and the package files (package.ini, sql/,
# www/, wiki/) are staged in ${PLUGHOST_PACKAGES_DIR}/<name>/, the directory
# a host's package_dirs points at. The staged sql/, www/ and wiki/ hold
# exactly the source tree's files: at every build, changed files are copied
# and files removed from the sources are removed from the stage (a stale
# upgrade script left there would be offered to the host).

# Script mode: cmake -DPLUGHOST_STAGE_FROM=<package dir> -DPLUGHOST_STAGE_TO=<stage>
#              -P PlughostPackage.cmake  (run by every build of a package)
if(CMAKE_SCRIPT_MODE_FILE AND DEFINED PLUGHOST_STAGE_FROM)
  cmake_policy(SET CMP0057 NEW) # IN_LIST
  foreach(sub sql www wiki)
    set(src ${PLUGHOST_STAGE_FROM}/${sub})
    set(dst ${PLUGHOST_STAGE_TO}/${sub})
    set(want "")
    if(IS_DIRECTORY ${src})
      file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE ${src} ${src}/*)
      foreach(rel IN LISTS files)
        list(APPEND want ${rel})
        # COPYONLY leaves an unchanged file alone (no new mtime for the watcher)
        configure_file(${src}/${rel} ${dst}/${rel} COPYONLY)
      endforeach()
    endif()
    if(IS_DIRECTORY ${dst})
      if(NOT IS_DIRECTORY ${src})
        file(REMOVE_RECURSE ${dst})
        continue()
      endif()
      file(GLOB_RECURSE have LIST_DIRECTORIES false RELATIVE ${dst} ${dst}/*)
      foreach(rel IN LISTS have)
        if(NOT rel IN_LIST want)
          file(REMOVE ${dst}/${rel})
        endif()
      endforeach()
      # directories left empty by a removal go as well (deepest first)
      file(GLOB_RECURSE dirs LIST_DIRECTORIES true ${dst}/*)
      list(SORT dirs ORDER DESCENDING)
      foreach(d IN LISTS dirs)
        if(IS_DIRECTORY ${d})
          file(GLOB left ${d}/*)
          if(NOT left)
            file(REMOVE ${d})
            file(REMOVE_RECURSE ${d})
          endif()
        endif()
      endforeach()
    endif()
  endforeach()
  return()
endif()

include_guard(GLOBAL)

function(_plughost_ini_value file section key out)
  file(STRINGS "${file}" lines)
  set(cur "")
  set(val "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*\\[([^]]+)\\]")
      set(cur "${CMAKE_MATCH_1}")
    elseif(cur STREQUAL section AND line MATCHES "^[ \t]*${key}[ \t]*=[ \t]*([^;#]*)")
      string(STRIP "${CMAKE_MATCH_1}" val)
    endif()
  endforeach()
  set(${out} "${val}" PARENT_SCOPE)
endfunction()

function(plughost_add_package target)
  cmake_parse_arguments(PKG "" "DIR" "SOURCES" ${ARGN})
  if(NOT PKG_DIR)
    set(PKG_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  set(ini ${PKG_DIR}/package.ini)
  if(NOT EXISTS ${ini})
    message(FATAL_ERROR "plughost_add_package(${target}): ${ini} not found; every package needs a package.ini")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ini})
  _plughost_ini_value(${ini} package name name)
  _plughost_ini_value(${ini} package version version)
  _plughost_ini_value(${ini} package library library)
  if(name STREQUAL "" OR version STREQUAL "")
    message(FATAL_ERROR "${ini}: [package] name and version are required")
  endif()
  if(library STREQUAL "")
    set(library "${name}.so")
  endif()
  if(NOT DEFINED PLUGHOST_PACKAGES_DIR)
    set(PLUGHOST_PACKAGES_DIR ${CMAKE_BINARY_DIR}/packages)
  endif()
  set(stage ${PLUGHOST_PACKAGES_DIR}/${name})

  add_library(${target} MODULE ${PKG_SOURCES})
  if(TARGET plughost::sdk)
    target_link_libraries(${target} PRIVATE plughost::sdk)
  endif()
  string(REGEX REPLACE "\\.so$" "" libname "${library}")
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME ${libname}
    LIBRARY_OUTPUT_DIRECTORY ${stage}
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden)
  target_compile_definitions(${target} PRIVATE
    PH_PACKAGE_NAME="${name}" PH_PACKAGE_VERSION="${version}")
  # A K&R definition has no prototype: PH_METHOD's signature check would accept any
  # declaration for it (sdk.h), so the build refuses it.
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:-Werror=old-style-definition>)
  # Packages must not need any host symbol at load time.
  target_link_options(${target} PRIVATE -Wl,-z,defs)
  if(CMAKE_CXX_COMPILER_LOADED)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  endif()

  # Stage the manifest and data directories beside the .so.
  set(outputs ${stage}/package.ini)
  add_custom_command(OUTPUT ${stage}/package.ini
    COMMAND ${CMAKE_COMMAND} -E make_directory ${stage}
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${ini} ${stage}/package.ini
    DEPENDS ${ini} VERBATIM)
  # No OUTPUT: runs at every build, so a file removed from the sources
  # (which no rule can depend on) is removed from the stage too.
  add_custom_target(${target}_files
    COMMAND ${CMAKE_COMMAND} -DPLUGHOST_STAGE_FROM=${PKG_DIR} -DPLUGHOST_STAGE_TO=${stage}
            -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE}
    DEPENDS ${outputs} VERBATIM)
  add_dependencies(${target} ${target}_files)
  if(NOT PLUGHOST_NO_INSTALL)
    if(NOT DEFINED PLUGHOST_INSTALL_PACKAGES_DIR)
      set(PLUGHOST_INSTALL_PACKAGES_DIR lib/plughost/packages)
    endif()
    if(NOT DEFINED PLUGHOST_INSTALL_COMPONENT)
      set(PLUGHOST_INSTALL_COMPONENT ${name})
    endif()
    install(TARGETS ${target} LIBRARY DESTINATION ${PLUGHOST_INSTALL_PACKAGES_DIR}/${name}
            COMPONENT ${PLUGHOST_INSTALL_COMPONENT})
    install(FILES ${ini} DESTINATION ${PLUGHOST_INSTALL_PACKAGES_DIR}/${name}
            COMPONENT ${PLUGHOST_INSTALL_COMPONENT})
    foreach(sub sql www wiki)
      if(IS_DIRECTORY ${PKG_DIR}/${sub})
        install(DIRECTORY ${PKG_DIR}/${sub} DESTINATION ${PLUGHOST_INSTALL_PACKAGES_DIR}/${name}
                COMPONENT ${PLUGHOST_INSTALL_COMPONENT})
      endif()
    endforeach()
  endif()
  set_property(TARGET ${target} PROPERTY PLUGHOST_PACKAGE_NAME ${name})
  set_property(TARGET ${target} PROPERTY PLUGHOST_PACKAGE_VERSION ${version})
endfunction()
