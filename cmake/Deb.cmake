# `make deb`: two Debian packages from the install components, with CPack.
#   plughost     the CLI (/usr/bin/plughost), the daemon it execs
#                (/usr/libexec/plughost/plughostd), plughost.service,
#                /etc/plughost/host.ini, pkgmgr
#   plughost-dev the SDK: headers, CMake package, pkg-config file
# Dependencies of the daemon come from dpkg-shlibdeps; /etc/plughost/host.ini
# is a conffile; each package carries its copyright and changelog as Debian
# policy asks (lintian checks them: tests/e2e_deb.sh).
# Set PH_DEB_MAINTAINER to the real maintainer when publishing the packages.
set(PH_DEB_MAINTAINER "plughost developers <maintainers@example.org>"
    CACHE STRING "the Maintainer of the Debian packages")
set(CPACK_PACKAGE_CONTACT "${PH_DEB_MAINTAINER}")
set(CPACK_STRIP_FILES ON)
set(PH_DOC_DIR ${CMAKE_BINARY_DIR}/debian-doc)
file(MAKE_DIRECTORY ${PH_DOC_DIR})
file(READ ${CMAKE_SOURCE_DIR}/dist/debian/changelog PH_CHANGELOG)
string(REPLACE "@MAINTAINER@" "${PH_DEB_MAINTAINER}" PH_CHANGELOG "${PH_CHANGELOG}")
file(WRITE ${PH_DOC_DIR}/changelog "${PH_CHANGELOG}")
execute_process(COMMAND gzip -9nf ${PH_DOC_DIR}/changelog)
foreach(comp host dev)
  set(pkg plughost)
  if(comp STREQUAL dev)
    set(pkg plughost-dev)
  endif()
  install(FILES dist/debian/copyright ${PH_DOC_DIR}/changelog.gz
          DESTINATION share/doc/${pkg} COMPONENT ${comp})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME plughost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})

set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL host dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "")
set(CPACK_DEBIAN_HOST_PACKAGE_NAME plughost)
set(CPACK_DEBIAN_HOST_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_HOST_PACKAGE_SHLIBDEPS ON)
# maintainer scripts (dist/debian/): postinst makes the system user plughost and
# enables the unit (deb-systemd-helper, as dh_installsystemd does), prerm stops it,
# postrm deletes /var/lib/plughost on purge only
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/dist/debian/conffiles ${CMAKE_SOURCE_DIR}/dist/debian/postinst
    ${CMAKE_SOURCE_DIR}/dist/debian/prerm ${CMAKE_SOURCE_DIR}/dist/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_HOST_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_HOST_DESCRIPTION
    "application host for C packages\nplughost loads packages written in C against its SDK, gives them a\nlifecycle, stores their models in SQLite with generated CRUD, routes calls\nto their methods over HTTP and from the command line, and hot-reloads a\npackage when its library changes.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME plughost-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "pkg-config")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "plughost (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "SDK for writing plughost packages\nThe header, CMake package (plughost_add_package) and pkg-config file to\nbuild packages for the plughost application host.")
include(CPack)
