//! orders: `getOrder(id)`, `listOrders(userId?)` over orders 1001–1003.

use msgwire_wire::RpcError;
use serde::{Deserialize, Serialize};

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Product code.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Unit price in cents.
    pub price_cents: u64,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Order number.
    pub id: u64,
    /// The user who placed it.
    pub user_id: u64,
    /// What was ordered.
    pub items: Vec<Item>,
    /// Sum of quantity × price, in cents.
    pub total_cents: u64,
    /// `paid`, `shipped` or `delivered`.
    pub status: String,
}

fn order(id: u64, user_id: u64, status: &str, items: &[(&str, u32, u64)]) -> Order {
    let items: Vec<Item> = items
        .iter()
        .map(|&(sku, quantity, price_cents)| Item {
            sku: sku.to_owned(),
            quantity,
            price_cents,
        })
        .collect();
    let total_cents = items
        .iter()
        .map(|i| u64::from(i.quantity) * i.price_cents)
        .sum();
    Order {
        id,
        user_id,
        items,
        total_cents,
        status: status.to_owned(),
    }
}

/// The order book.
pub fn book() -> Vec<Order> {
    vec![
        order(
            1001,
            1,
            "delivered",
            &[("KB-01", 1, 8999), ("MS-02", 2, 2499)],
        ),
        order(1002, 2, "shipped", &[("MN-27", 1, 32900)]),
        order(1003, 1, "paid", &[("CB-USB", 3, 999)]),
    ]
}

/// `getOrder` params: `[id]` or `{"id": ..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GetOrderParams {
    /// Order number.
    pub id: u64,
}

/// The order with that number, or NOT_FOUND.
pub fn get_order(p: GetOrderParams) -> Result<Order, RpcError> {
    book()
        .into_iter()
        .find(|o| o.id == p.id)
        .ok_or_else(|| RpcError::not_found(format!("order {} not found", p.id)))
}

/// `listOrders` params: `[]`, `[userId]` or `{"userId": ..}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListOrdersParams {
    /// Only this user's orders.
    pub user_id: Option<u64>,
}

/// Every order, or one user's.
pub fn list_orders(p: ListOrdersParams) -> Result<Vec<Order>, RpcError> {
    Ok(book()
        .into_iter()
        .filter(|o| p.user_id.is_none_or(|u| o.user_id == u))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let o = get_order(GetOrderParams { id: 1001 }).ok();
        assert_eq!(o.map(|o| o.total_cents), Some(8999 + 2 * 2499));
        assert!(get_order(GetOrderParams { id: 7 }).is_err());
        let alice = list_orders(ListOrdersParams { user_id: Some(1) }).unwrap_or_default();
        assert_eq!(alice.iter().map(|o| o.id).collect::<Vec<_>>(), [1001, 1003]);
        assert_eq!(
            list_orders(ListOrdersParams::default())
                .map(|v| v.len())
                .ok(),
            Some(3)
        );
    }
}
