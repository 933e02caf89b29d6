//! Placement constraints, placement strategies and capacity provider
//! strategies: limits, types, fields, and the cluster query language.

use super::{Result, ValidationError};
use crate::model::placement::{
    CapacityProviderStrategyItem, PlacementConstraint, PlacementStrategy,
};
use crate::model::task_definition::TaskDefinitionPlacementConstraint;
pub use crate::placement::ProviderShare;
use crate::placement::{BinpackField, Constraint, SpreadField, Strategy, cql};

/// ECS's limit on constraints per task, the definition's included.
pub const MAX_CONSTRAINTS: usize = 10;
/// ECS's limit on strategy rules.
pub const MAX_STRATEGIES: usize = 5;
/// The seed's limit on capacity provider strategy items.
pub const MAX_CAPACITY_PROVIDER_ITEMS: usize = 6;

fn member_of(expression: Option<&str>, what: &str) -> Result<Constraint> {
    let text = expression.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ValidationError::invalid(format!(
            "{what}: a memberOf constraint needs an expression in the cluster query language."
        )));
    }
    let expr = cql::parse(text)
        .map_err(|e| ValidationError::invalid(format!("{what}: '{text}' is not valid: {e}.")))?;
    Ok(Constraint::MemberOf {
        expr,
        text: text.to_owned(),
    })
}

/// The task definition's constraints (validated at registration too) and the
/// request's, together at most 10.
pub fn constraints(
    request: &[PlacementConstraint],
    definition: &[TaskDefinitionPlacementConstraint],
) -> Result<Vec<Constraint>> {
    let total = request.len() + definition.len();
    if total > MAX_CONSTRAINTS {
        return Err(ValidationError::invalid(format!(
            "A task can have at most {MAX_CONSTRAINTS} placement constraints, the task definition's included (got {} + {}).",
            definition.len(),
            request.len()
        )));
    }
    let mut out = Vec::with_capacity(total);
    for (i, c) in definition.iter().enumerate() {
        out.push(member_of(
            c.expression.as_deref(),
            &format!("task definition placementConstraints[{i}]"),
        )?);
    }
    for (i, c) in request.iter().enumerate() {
        let what = format!("placementConstraints[{i}]");
        match c.kind.as_deref() {
            Some("distinctInstance") => {
                if c.expression.as_deref().is_some_and(|e| !e.is_empty()) {
                    return Err(ValidationError::invalid(format!(
                        "{what}: a distinctInstance constraint takes no expression; remove it."
                    )));
                }
                out.push(Constraint::DistinctInstance);
            }
            Some("memberOf") => out.push(member_of(c.expression.as_deref(), &what)?),
            other => {
                return Err(ValidationError::invalid(format!(
                    "{what}: type should be one of [distinctInstance,memberOf] (got '{}').",
                    other.unwrap_or_default()
                )));
            }
        }
    }
    Ok(out)
}

/// Strategy rules, at most 5, applied in order.
pub fn strategies(items: &[PlacementStrategy]) -> Result<Vec<Strategy>> {
    if items.len() > MAX_STRATEGIES {
        return Err(ValidationError::invalid(format!(
            "At most {MAX_STRATEGIES} placement strategy rules are allowed (got {}).",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let what = format!("placementStrategy[{i}]");
            let field = s.field.as_deref().unwrap_or_default();
            if field.chars().count() > 255 {
                return Err(ValidationError::invalid(format!("{what}: field is longer than 255 characters.")));
            }
            match s.kind.as_deref() {
                Some("random") => Ok(Strategy::Random),
                Some("spread") => match field {
                    "instanceId" | "host" => Ok(Strategy::Spread(SpreadField::Instance)),
                    f => match f.strip_prefix("attribute:") {
                        Some(name) if !name.is_empty() => Ok(Strategy::Spread(SpreadField::Attribute(name.to_owned()))),
                        _ => Err(ValidationError::invalid(format!(
                            "{what}: spread needs field instanceId, host or attribute:<name> (got '{f}')."
                        ))),
                    },
                },
                Some("binpack") => match field {
                    "cpu" => Ok(Strategy::Binpack(BinpackField::Cpu)),
                    "memory" => Ok(Strategy::Binpack(BinpackField::Memory)),
                    f => Err(ValidationError::invalid(format!(
                        "{what}: binpack needs field cpu or memory (got '{f}')."
                    ))),
                },
                other => Err(ValidationError::invalid(format!(
                    "{what}: type should be one of [random,spread,binpack] (got '{}').",
                    other.unwrap_or_default()
                ))),
            }
        })
        .collect()
}

/// A capacity provider strategy: at most 6 items (the seed's limit), each
/// naming a provider once, weight 0-1000, base 0-100000, base on at most one
/// item, and something to place on (a weight or a base above 0).
pub fn capacity_provider_strategy(
    items: &[CapacityProviderStrategyItem],
) -> Result<Vec<ProviderShare>> {
    if items.len() > MAX_CAPACITY_PROVIDER_ITEMS {
        return Err(ValidationError::invalid(format!(
            "A capacity provider strategy can contain at most {MAX_CAPACITY_PROVIDER_ITEMS} capacity providers (got {}).",
            items.len()
        )));
    }
    let mut out: Vec<ProviderShare> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = item
            .capacity_provider
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ValidationError::invalid(format!(
                    "capacityProviderStrategy[{i}] needs a capacityProvider name."
                ))
            })?;
        let name = crate::model::arn::parse(name)
            .filter(|a| a.resource_type == "capacity-provider")
            .map_or(name, |a| a.path);
        let weight = item.weight.unwrap_or(0);
        if !(0..=1000).contains(&weight) {
            return Err(ValidationError::invalid(format!(
                "capacityProviderStrategy[{i}].weight must be 0-1000 (got {weight})."
            )));
        }
        let base = item.base.unwrap_or(0);
        if !(0..=100_000).contains(&base) {
            return Err(ValidationError::invalid(format!(
                "capacityProviderStrategy[{i}].base must be 0-100000 (got {base})."
            )));
        }
        if out.iter().any(|s| s.name == name) {
            return Err(ValidationError::invalid(format!(
                "capacityProviderStrategy names '{name}' more than once."
            )));
        }
        out.push(ProviderShare {
            name: name.to_owned(),
            weight: weight as u32,
            base: base as u32,
        });
    }
    if out.iter().filter(|s| s.base > 0).count() > 1 {
        return Err(ValidationError::invalid(
            "Only one capacity provider in a strategy can have a base above 0.",
        ));
    }
    if !out.is_empty() && out.iter().all(|s| s.weight == 0 && s.base == 0) {
        return Err(ValidationError::invalid(
            "At least one capacity provider in the strategy needs a weight (or a base) above 0.",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraint(kind: &str, expr: Option<&str>) -> PlacementConstraint {
        PlacementConstraint {
            kind: Some(kind.into()),
            expression: expr.map(str::to_owned),
        }
    }

    fn strategy(kind: &str, field: Option<&str>) -> PlacementStrategy {
        PlacementStrategy {
            kind: Some(kind.into()),
            field: field.map(str::to_owned),
        }
    }

    fn item(name: &str, weight: i64, base: i64) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: Some(name.into()),
            weight: Some(weight),
            base: Some(base),
        }
    }

    #[test]
    fn constraint_rules() {
        assert_eq!(
            constraints(&[constraint("distinctInstance", None)], &[])
                .unwrap()
                .len(),
            1
        );
        assert!(
            constraints(
                &[constraint("distinctInstance", Some("attribute:a exists"))],
                &[]
            )
            .is_err()
        );
        assert!(constraints(&[constraint("memberOf", None)], &[]).is_err());
        let e = constraints(&[constraint("memberOf", Some("attribute:a =="))], &[]).unwrap_err();
        assert!(
            e.message.contains("placementConstraints[0]") && e.message.contains("character"),
            "{e}"
        );
        assert!(constraints(&[constraint("sameHost", None)], &[]).is_err());
        let eleven: Vec<_> = (0..11)
            .map(|_| constraint("distinctInstance", None))
            .collect();
        assert!(constraints(&eleven, &[]).is_err());
        let def: Vec<_> = (0..5)
            .map(|_| TaskDefinitionPlacementConstraint {
                kind: Some("memberOf".into()),
                expression: Some("attribute:a exists".into()),
            })
            .collect();
        let six: Vec<_> = (0..6)
            .map(|_| constraint("distinctInstance", None))
            .collect();
        assert!(
            constraints(&six, &def).is_err(),
            "the definition's count too"
        );
        assert_eq!(constraints(&six[..5], &def).unwrap().len(), 10);
    }

    #[test]
    fn strategy_rules() {
        assert_eq!(
            strategies(&[
                strategy("spread", Some("attribute:ecs.availability-zone")),
                strategy("binpack", Some("memory"))
            ])
            .unwrap(),
            vec![
                Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
                Strategy::Binpack(BinpackField::Memory)
            ]
        );
        assert_eq!(
            strategies(&[strategy("spread", Some("host"))]).unwrap(),
            vec![Strategy::Spread(SpreadField::Instance)]
        );
        assert_eq!(
            strategies(&[strategy("random", None)]).unwrap(),
            vec![Strategy::Random]
        );
        assert!(strategies(&[strategy("spread", None)]).is_err());
        assert!(strategies(&[strategy("binpack", Some("disk"))]).is_err());
        assert!(strategies(&[strategy("pack", Some("cpu"))]).is_err());
        assert!(strategies(&vec![strategy("random", None); 6]).is_err());
    }

    #[test]
    fn capacity_provider_rules() {
        assert_eq!(
            capacity_provider_strategy(&[item("a", 1, 2), item("b", 3, 0)])
                .unwrap()
                .len(),
            2
        );
        assert!(
            capacity_provider_strategy(&[item("a", 1, 1), item("b", 1, 1)]).is_err(),
            "one base"
        );
        assert!(capacity_provider_strategy(&[item("a", 1001, 0)]).is_err());
        assert!(capacity_provider_strategy(&[item("a", 1, 100_001)]).is_err());
        assert!(capacity_provider_strategy(&[item("a", 1, 0), item("a", 1, 0)]).is_err());
        assert!(capacity_provider_strategy(&[item("a", 0, 0)]).is_err());
        let seven: Vec<_> = (0..7).map(|i| item(&format!("p{i}"), 1, 0)).collect();
        assert!(
            capacity_provider_strategy(&seven).is_err(),
            "the seed allows 6"
        );
        assert_eq!(
            capacity_provider_strategy(&[item("arn:aws:ecs:r:1:capacity-provider/gpu", 1, 0)])
                .unwrap()[0]
                .name,
            "gpu"
        );
    }
}
