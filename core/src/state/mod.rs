//! State machines applied in log order: the trait, the journal store and the coordination KV.
