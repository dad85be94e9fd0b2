// Generating the builtin:shapes demo dataset with the default options (2,000 train + 200 val PNG
// images, captions, VQA samples and the tokenizer corpus) into a temp dir, N times. Prints each
// run's wall time, the median and images/s. Target: under 2 s per dataset.
// usage: shapes_bench [--repeat N] [--dir DIR]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "data/shapes/shapes_dataset.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Args {
  int repeat = 5;
  fs::path dir = fs::temp_directory_path() / ("shapes_bench_" + std::to_string(::getpid()));
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      a.repeat = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc) {
      a.dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: shapes_bench [--repeat N] [--dir DIR]\n");
      std::exit(1);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const sweep::data::ShapesOptions opt;  // the demo's sizes
  const int images = opt.train_images + opt.val_images;
  std::vector<double> seconds;
  for (int run = 0; run < args.repeat; ++run) {
    const fs::path root = args.dir / ("ds" + std::to_string(run));
    fs::remove_all(root);
    const auto t0 = Clock::now();
    sweep::data::write_shapes_dataset(root.string(), opt);
    seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    fs::remove_all(root);
    std::printf("run %d: %.3f s\n", run + 1, seconds.back());
  }
  fs::remove_all(args.dir);
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  std::printf("shapes dataset (%d images of %d px): median %.3f s, min %.3f s, %.0f images/s\n",
              images, opt.image_size, median, seconds.front(), images / median);
  return 0;
}
