#include "data/click_model.h"
