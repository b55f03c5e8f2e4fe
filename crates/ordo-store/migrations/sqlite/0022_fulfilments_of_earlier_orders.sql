-- Orders placed before the lifecycle existed (status `placed`, no fulfilments): one fulfilment
-- per node from their allocations (address 0), so they can be picked, shipped or cancelled like
-- any other; their status becomes `allocated`, as placement now writes it.
INSERT INTO fulfillments (tenant_id, id, order_id, location_id, address_index, status, lines, created_at_ms, updated_at_ms)
  SELECT a.tenant_id, 'ful_' || lower(hex(randomblob(16))), a.order_id, a.location_id, 0, 'allocated',
         json_group_array(json_object('sku', a.sku, 'quantity', a.quantity)), o.created_at_ms, o.created_at_ms
  FROM order_allocations a JOIN orders o ON o.tenant_id = a.tenant_id AND o.id = a.order_id
  WHERE o.status = 'placed' AND a.quantity > 0
    AND NOT EXISTS (SELECT 1 FROM fulfillments f WHERE f.tenant_id = a.tenant_id AND f.order_id = a.order_id)
  GROUP BY a.tenant_id, a.order_id, a.location_id, o.created_at_ms;
UPDATE orders SET status = 'allocated'
  WHERE status = 'placed' AND EXISTS (SELECT 1 FROM fulfillments f WHERE f.tenant_id = orders.tenant_id AND f.order_id = orders.id);
