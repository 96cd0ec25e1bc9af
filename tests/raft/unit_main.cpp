// Entry point of raft_unit: the doctest runner for the Raft core's unit tests.
// The tests themselves live in codec_test.cpp, log_test.cpp and node_test.cpp.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
