#include "train/cpt.h"
