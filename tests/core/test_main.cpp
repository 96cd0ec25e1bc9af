// Entry point of the core domain-type tests (doctest supplies main and the summary line).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
