# nothing but an explicit keep
keep;
