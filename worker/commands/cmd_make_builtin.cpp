// `sweep-worker make-builtin tiny-llava [--out DIR RECIPE-OPTIONS]`: without --out, makes the
// built-in base model in the cache if it is not there yet (once across processes, default recipe)
// and prints its directory as the last line of stdout. With --out it makes a model into DIR
// instead (no cache, no lock) with any of the recipe options below changed: the way to try a
// stronger, smaller or differently trained base.
#include <iostream>
#include <set>
#include <string>

#include "data/builtin.h"
#include "worker/commands/commands.h"
#include "worker/train/builtin_model.h"
#include "worker/train/tool_args.h"

namespace sweep::worker {
namespace {

// The options that change train::BaseModelRecipe (recipe_from); they need --out.
const std::set<std::string> kRecipeOptions = {
    "steps",        "batch-size", "learning-rate", "projector-learning-rate",
    "train-vision", "threads",    "seed",          "preset"};

constexpr const char* kUsage =
    "usage: sweep-worker make-builtin tiny-llava [--out DIR [--steps N] [--batch-size N] "
    "[--learning-rate X] [--projector-learning-rate X] [--train-vision 0|1] [--threads N] "
    "[--seed N] [--preset tiny|small]]";

train::BaseModelRecipe recipe_from(const train::ToolArgs& a) {
  train::BaseModelRecipe r;
  r.steps = a.get_int("steps", r.steps);
  r.batch_size = a.get_int("batch-size", r.batch_size);
  r.learning_rate = a.get_double("learning-rate", r.learning_rate);
  r.projector_learning_rate = a.get_double("projector-learning-rate", r.projector_learning_rate);
  r.train_vision_tower = a.get_int("train-vision", r.train_vision_tower ? 1 : 0) != 0;
  r.threads = a.get_int("threads", r.threads);
  r.seed = static_cast<uint64_t>(a.get_int("seed", static_cast<int>(r.seed)));
  r.preset = a.get("preset", r.preset);
  return r;
}

}  // namespace

int cmd_make_builtin(const Args& args) {
  return train::run_tool("make-builtin", [&]() -> int {
    std::set<std::string> known = kRecipeOptions;
    known.insert("out");
    train::ToolArgs a("make-builtin", args, known, kUsage);
    if (a.positionals().size() != 1) {
      std::cerr << kUsage << "\n";
      return kExitBadInput;
    }
    const std::string& name = a.positionals()[0];
    const std::string ref = name.rfind("builtin:", 0) == 0 ? name : "builtin:" + name;
    if (!a.has("out")) {
      for (const std::string& opt : kRecipeOptions)
        if (a.has(opt))
          throw std::invalid_argument("--" + opt +
                                      " changes the recipe, so it needs --out DIR (the cached "
                                      "built-in model is always made with the default recipe)");
      std::cout << train::make_builtin_model(ref, &std::cerr) << "\n";
      return kExitOk;
    }
    data::builtin_model_dir(ref);  // throws for unknown names
    const std::string shapes_root = data::resolve_builtin_data("builtin:shapes");
    const train::BaseModelReport r =
        train::make_tiny_llava(shapes_root, a.get("out"), recipe_from(a), &std::cerr);
    std::cerr << "make-builtin: caption loss " << r.first_loss << " -> " << r.last_loss << " in "
              << r.seconds << " s\n";
    std::cout << a.get("out") << "\n";
    return kExitOk;
  });
}

}  // namespace sweep::worker
