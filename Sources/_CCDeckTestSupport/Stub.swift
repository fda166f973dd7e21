import CCDeckCore
