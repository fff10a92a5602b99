#include "train/validation.h"
