#include "train/train_options.h"
