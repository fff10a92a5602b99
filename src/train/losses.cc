#include "train/losses.h"
