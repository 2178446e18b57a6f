"""The conversation: the pt-BR engine, the texts it sends, the chat cart, and the job that fans out "a shopper
wrote" to the engine, the recovery tracker and the CRM."""
