// The one list of vampnet ops. Adding an op: write ops/cpp/<op>.{h,cc}, ops/<op>.py and tests/test_<op>.py,
// then add its header and factory here.
#pragma once

#include <vector>

#include "codebook_embedding.h"
#include "dynamic_quantize_im2col.h"
#include "film.h"
#include "philox_uniform.h"
#include "snake.h"
#include "relative_position_attention.h"
#include "relative_position_attention_int8.h"
#include "rms_norm.h"
#include "sample_and_remask.h"

namespace vampnet {

constexpr const char* kDomain = "vampnet";

inline std::vector<const OrtCustomOp*> all_ops() {
  return {
      snake_op(),
      rms_norm_op(),
      film_op(),
      codebook_embedding_op(),
      philox_uniform_op(),
      sample_and_remask_op(),
      relative_position_attention_op(),
      relative_position_attention_int8_op(),
      dynamic_quantize_im2col_op(),
  };
}

}  // namespace vampnet
