"""venues: building ccxt exchanges pointed at the real venue or a local server, and the fake
Binance server the tests (and the demo) point them at."""
