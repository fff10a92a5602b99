#include "infer/score_pool.h"
