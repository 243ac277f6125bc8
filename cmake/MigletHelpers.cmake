# Small helpers shared by every part of the build.

# Compile options every miglet target gets.
function(miglet_target_defaults target)
  # Designated initializers that leave members at their defaults ({.base_url = u}) are the
  # point of default member initializers; GCC 12 warns about them anyway (newer GCCs do not).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                                           -Wno-missing-field-initializers)
  if(MIGLET_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # cpprestsdk's U() macro collides with fmt 9's template parameter U (see TOOLCHAIN.md).
  target_compile_definitions(${target} PRIVATE _TURN_OFF_PLATFORM_STRING)
endfunction()

# miglet_add_test(NAME LABEL unit|integration|e2e SOURCES ... DEPS ... [PROPERTIES k v ...])
# One gtest binary whose cases are discovered into ctest with the given label (and any other
# test properties, e.g. FIXTURES_REQUIRED).
function(miglet_add_test name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;DEPS;PROPERTIES" ${ARGN})
  if(NOT T_LABEL)
    message(FATAL_ERROR "miglet_add_test(${name}) needs a LABEL")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  miglet_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT} ${T_PROPERTIES}
    DISCOVERY_TIMEOUT 30)
endfunction()
