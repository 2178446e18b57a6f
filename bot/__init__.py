"""WhatsApp channel (webhooks, sender, delivery status, 24-hour window) and the conversation engine."""
