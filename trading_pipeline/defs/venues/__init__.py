"""Other venues as assets: Coinbase and Binance US candles by venue series × month, and the basis."""
