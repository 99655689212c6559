"""Tariffs, price series and (later) connection agreements and markets: what energy and
peaks cost the site (see :mod:`evflex.markets.tariff`)."""
