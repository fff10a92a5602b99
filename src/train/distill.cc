#include "train/distill.h"
