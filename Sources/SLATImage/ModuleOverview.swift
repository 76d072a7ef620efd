// SLATImage: table images built from mapping scripts, dumped, translated and drawn. Being written under issue 8.
