-- Retention of webhook deliveries (issue 15, contactcenter/events/retention.py): delivered rows are deleted
-- CC_WEBHOOK_DELIVERED_RETENTION_HOURS after their delivery, oldest first, a bounded batch at a time. This index
-- finds them without reading the line's pending rows or the parked ones (which stay until replayed, or until
-- they are older than the event log's retention: few, found through webhook_deliveries_parked).
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE state = 'delivered';
