// doctest's main() for the store test executables.
// Each test file holds the cases for the source file of the same name in src/store.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
