#include "train/sft.h"
