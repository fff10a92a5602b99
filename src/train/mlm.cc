#include "train/mlm.h"
