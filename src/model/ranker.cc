#include "model/ranker.h"
