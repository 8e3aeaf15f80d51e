"""Channel adapters: each speaks one provider's protocol, turns contacts into interactions and publishes them."""
