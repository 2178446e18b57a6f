"""WhatsApp transport: inbound messages stored once with consent applied, the one outbound path (queue, rate
limits, 24-hour window, provider call), delivery status, and the delivery jobs. Imports no feature package."""
