#!/usr/bin/env bash
# ThreadSanitizer over the code that runs threads: the run loop's unit tests (its stop requests
# arrive from a signal handler through an atomic and a pipe), the report server (served on one
# thread, stopped from another), the data loader's prefetch thread and check-data's parallel
# decoding. `sweep run` itself is single-threaded and its workers are processes, so the run loop's
# end-to-end tests add nothing here and stay in the ASan stage. Run by CI after the ASan stage.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-tsan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWEEP_BUILD_TESTS=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
  --target run_units_test run_loop_unit_test report_test data_test
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
"$build/tests/run/run_units_test" --gtest_brief=1
"$build/tests/run/run_loop_unit_test" --gtest_brief=1
"$build/tests/report/report_test" --gtest_brief=1 --gtest_filter='ReportServer.*'
"$build/tests/data/data_test" --gtest_brief=1 --gtest_filter='BatchLoader.*:CheckData*.*'
