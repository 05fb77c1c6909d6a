# Installation: the public header, libmodaltensor.so (with SONAME) and
# libmodaltensor.a, a CMake package (find_package(modaltensor CONFIG)) and a
# pkg-config file. Both the CMake package and the .pc file are relocatable, so
# `cmake --install build --prefix DIR` gives a working copy under any DIR.
include(CMakePackageConfigHelpers)

set(MT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/modaltensor CACHE STRING
    "Where the CMake package files go, relative to the prefix")
set(MT_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig CACHE STRING
    "Where modaltensor.pc goes, relative to the prefix")

install(TARGETS modaltensor modaltensor_static
  EXPORT modaltensorTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/modaltensor.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT modaltensorTargets
  NAMESPACE modaltensor::
  DESTINATION ${MT_INSTALL_CMAKEDIR})

# What a static link needs comes from modaltensor_static's link interface,
# so a dependency added in src/CMakeLists.txt reaches the CMake package
# (MT_CONFIG_*) and the .pc file (MT_PC_*) by itself:
#   OpenMP::OpenMP_C, Threads::Threads  find_dependency / -l<runtime libs>
#   PkgConfig::<PREFIX>                 pkg_check_modules / Requires.private
#   a plain library name (m, dl)        -l<name>
set(MT_CONFIG_FIND_DEPENDENCIES "")
set(MT_CONFIG_PKG_MODULES "")
set(MT_PC_REQUIRES_PRIVATE "")
set(MT_PC_LIBS_PRIVATE "")
get_target_property(_mt_static_deps modaltensor_static INTERFACE_LINK_LIBRARIES)
foreach(_dep IN LISTS _mt_static_deps)
  if(_dep STREQUAL "OpenMP::OpenMP_C")
    string(APPEND MT_CONFIG_FIND_DEPENDENCIES "find_dependency(OpenMP COMPONENTS C)\n")
    foreach(_lib IN LISTS OpenMP_C_LIB_NAMES)
      list(APPEND MT_PC_LIBS_PRIVATE -l${_lib})
    endforeach()
  elseif(_dep STREQUAL "Threads::Threads")
    string(APPEND MT_CONFIG_FIND_DEPENDENCIES "find_dependency(Threads)\n")
    list(APPEND MT_PC_LIBS_PRIVATE -lpthread)
  elseif(_dep MATCHES "^PkgConfig::(.+)$")
    set(_prefix ${CMAKE_MATCH_1})
    if(NOT ${_prefix}_MODULE_NAME)
      message(FATAL_ERROR "install: no pkg-config module known for ${_dep} "
                          "(pkg_check_modules(${_prefix} ...) with exactly one module)")
    endif()
    list(APPEND MT_CONFIG_PKG_MODULES "${_prefix}=${${_prefix}_MODULE_NAME}")
    list(APPEND MT_PC_REQUIRES_PRIVATE ${${_prefix}_MODULE_NAME})
  elseif(_dep MATCHES "^[A-Za-z0-9_+.-]+$" AND NOT TARGET ${_dep})
    list(APPEND MT_PC_LIBS_PRIVATE -l${_dep})
  else()
    message(FATAL_ERROR "install: modaltensor_static links ${_dep}, which cmake/MtInstall.cmake "
                        "cannot describe to the CMake package and modaltensor.pc")
  endif()
endforeach()
if(MT_CONFIG_PKG_MODULES)
  string(APPEND MT_CONFIG_FIND_DEPENDENCIES "find_dependency(PkgConfig)\n")
endif()
list(REMOVE_DUPLICATES MT_PC_LIBS_PRIVATE)
list(JOIN MT_PC_LIBS_PRIVATE " " MT_PC_LIBS_PRIVATE)
list(JOIN MT_PC_REQUIRES_PRIVATE " " MT_PC_REQUIRES_PRIVATE)

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/modaltensorConfig.cmake.in
  ${PROJECT_BINARY_DIR}/modaltensorConfig.cmake
  INSTALL_DESTINATION ${MT_INSTALL_CMAKEDIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/modaltensorConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/modaltensorConfig.cmake
  ${PROJECT_BINARY_DIR}/modaltensorConfigVersion.cmake
  DESTINATION ${MT_INSTALL_CMAKEDIR})

# pkg-config: the prefix is found from the .pc file's own location
# (${pcfiledir}), which keeps the file valid for any install prefix.
if(IS_ABSOLUTE "${MT_INSTALL_PKGCONFIGDIR}")
  set(MT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _mt_up "/prefix/${MT_INSTALL_PKGCONFIGDIR}" "/prefix")
  string(REGEX REPLACE "/$" "" _mt_up "${_mt_up}")
  set(MT_PC_PREFIX "\${pcfiledir}/${_mt_up}")
endif()
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
    set(MT_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
  else()
    set(MT_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
  endif()
endforeach()

configure_file(${CMAKE_CURRENT_LIST_DIR}/modaltensor.pc.in
  ${PROJECT_BINARY_DIR}/modaltensor.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/modaltensor.pc
  DESTINATION ${MT_INSTALL_PKGCONFIGDIR})
