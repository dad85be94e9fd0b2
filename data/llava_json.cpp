#include "data/llava_json.h"

#include <stdexcept>

#include "common/failure.h"
#include "data/sample_checks.h"

namespace sweep::data {

std::vector<Sample> load_llava_json(const std::string& path) {
  std::vector<Sample> samples;
  std::vector<DataProblem> problems;
  auto first_error = [&problems]() -> const DataProblem* {
    for (const DataProblem& p : problems) {
      if (p.error) return &p;
    }
    return nullptr;
  };
  auto reject = [&](const DataProblem& p) {
    sweep::fail(ErrorKind::kUser, path + ": " + describe(p) +
                                      " (run `sweep check-data` for every problem of the file)");
  };
  for_each_array_element(
      path,
      [&](int64_t index, nlohmann::json& element) {
        Sample s;
        if (!check_sample(element, index, &problems, &s)) reject(*first_error());
        problems.clear();  // warnings only
        samples.push_back(std::move(s));
      },
      &problems);
  if (const DataProblem* p = first_error()) reject(*p);
  return samples;
}

}  // namespace sweep::data
