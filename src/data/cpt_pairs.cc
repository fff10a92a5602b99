#include "data/cpt_pairs.h"
