import CCDeckCLI

// The executable is this line; everything else is the CCDeckCLI library.
CCDeckCLI.main()
