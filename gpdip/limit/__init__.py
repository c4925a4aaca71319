"""The infinite-width limit: covariance tables, the layers' kernel maps, far field, compiler."""
