"""GenHub's webhook notifier: task status changes posted to the task's ``webhook.url``, signed
per Standard Webhooks, delivered at least once from a durable RabbitMQ queue with retries for
about a day, and a delivery log per task. See docs/webhooks.md.

* ``WebhookNotifier.notify(task)`` — called on every status change (task lifecycle hook);
  enqueues an event when the task's webhook wants it. Cheap: one confirmed publish.
* ``genhub-notifier`` — the delivering process (``DeliveryConsumer``).
"""
