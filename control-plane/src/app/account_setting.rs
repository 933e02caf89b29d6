//! Account settings (PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting, ListAccountSettings), per principal, with ECS's
//! names, values and defaults. A principal is the caller's access key
//! (`arn:aws:iam::<account>:user/<access key id>`); the account default is
//! the root principal's (`arn:aws:iam::<account>:root`). Every key may set
//! any principal's settings: Berth's keys are all administrators.
//!
//! What they do on Berth: `containerInsights` is the default of new
//! clusters' setting; the long-ARN settings can only be `enabled` (Berth
//! issues long ARNs only, as ECS has since 2021); `guardDutyActivate` is
//! read-only, as in ECS; the rest are recorded and shown back
//! (`tagResourceAuthorization` is honoured trivially: every key may tag).

use super::page::Page;
use super::state::{AccountSettingRecord, State};
use super::{Caller, ControlPlane, Result, Staged, invalid};
use crate::model::account_setting::{
    DeleteAccountSettingRequest, ListAccountSettingsRequest, ListAccountSettingsResponse,
    PutAccountSettingRequest, Setting, SettingResponse,
};
use crate::validate;

/// Every setting: name, allowed values, ECS's default.
const SETTINGS: &[(&str, &[&str], &str)] = &[
    ("awsvpcTrunking", &["enabled", "disabled"], "disabled"),
    (
        "containerInsights",
        &["enabled", "disabled", "enhanced"],
        "disabled",
    ),
    ("containerInstanceLongArnFormat", &["enabled"], "enabled"),
    (
        "defaultLogDriverMode",
        &["blocking", "non-blocking"],
        "non-blocking",
    ),
    ("fargateEventWindows", &["enabled", "disabled"], "disabled"),
    ("fargateFIPSMode", &["enabled", "disabled"], "disabled"),
    ("fargateTaskRetirementWaitPeriod", &["0", "7", "14"], "7"),
    ("guardDutyActivate", &["on", "off"], "off"),
    ("serviceLongArnFormat", &["enabled"], "enabled"),
    ("tagResourceAuthorization", &["on", "off"], "on"),
    ("taskLongArnFormat", &["enabled"], "enabled"),
];

fn known(name: &str) -> Result<&'static (&'static str, &'static [&'static str], &'static str)> {
    SETTINGS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).collect();
        invalid(format!(
            "The account setting name '{name}' is not valid: use one of {}.",
            names.join(", ")
        ))
    })
}

fn check_value(name: &str, value: &str) -> Result<()> {
    let (_, values, _) = known(name)?;
    if name == "guardDutyActivate" {
        return Err(invalid(
            "guardDutyActivate is managed by AWS (type aws_managed) and cannot be changed.",
        ));
    }
    if values.contains(&value) {
        return Ok(());
    }
    if name.ends_with("LongArnFormat") {
        return Err(invalid(format!(
            "{name} can only be enabled: Berth issues only long ARNs (ECS ended the opt-out in 2021)."
        )));
    }
    Err(invalid(format!(
        "The value '{value}' of account setting {name} is not valid: use {}.",
        values.join(" or ")
    )))
}

fn setting_type(name: &str) -> String {
    if name == "guardDutyActivate" {
        "aws_managed".into()
    } else {
        "user".into()
    }
}

/// The value of `name` in force for `caller`: theirs, else the account
/// default, else ECS's.
pub(super) fn effective(state: &State, caller: &Caller, name: &str) -> String {
    let root = caller.root();
    state
        .account_settings
        .get(&(caller.principal_arn.clone(), name.to_owned()))
        .or_else(|| state.account_settings.get(&(root, name.to_owned())))
        .map(|r| r.value.clone())
        .unwrap_or_else(|| {
            SETTINGS
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, _, d)| (*d).to_owned())
                .unwrap_or_default()
        })
}

/// A principal ARN a caller may name: an IAM user, role or root ARN.
fn principal(given: Option<&str>, caller: &Caller) -> Result<Caller> {
    match given {
        None => Ok(caller.clone()),
        Some(arn) if arn.starts_with("arn:") && arn.contains(":iam::") => Ok(Caller {
            principal_arn: arn.to_owned(),
            account_id: caller.account_id.clone(),
        }),
        Some(other) => Err(invalid(format!(
            "principalArn '{other}' is not valid: give the ARN of an IAM user, role or root, e.g. arn:aws:iam::{}:root.",
            caller.account_id
        ))),
    }
}

impl ControlPlane {
    /// PutAccountSetting: for the caller, or `principalArn`.
    pub async fn put_account_setting(
        &self,
        req: PutAccountSettingRequest,
        caller: &Caller,
    ) -> Result<SettingResponse> {
        let who = principal(req.principal_arn.as_deref(), caller)?;
        self.put_setting(req, who.principal_arn).await
    }

    /// PutAccountSettingDefault: the account's default (the root's).
    pub async fn put_account_setting_default(
        &self,
        req: PutAccountSettingRequest,
        caller: &Caller,
    ) -> Result<SettingResponse> {
        if req.principal_arn.is_some() {
            return Err(invalid(
                "PutAccountSettingDefault takes no principalArn: it sets the account default. Use PutAccountSetting for one principal.",
            ));
        }
        self.put_setting(req, caller.root()).await
    }

    async fn put_setting(
        &self,
        req: PutAccountSettingRequest,
        principal_arn: String,
    ) -> Result<SettingResponse> {
        let name = validate::required_str(req.name.as_deref(), "name")?;
        let value = validate::required_str(req.value.as_deref(), "value")?;
        check_value(name, value)?;
        let record = AccountSettingRecord {
            principal_arn,
            name: name.to_owned(),
            value: value.to_owned(),
        };
        let wakeups = {
            let mut state = self.lock();
            let key = (record.principal_arn.clone(), record.name.clone());
            if state.account_settings.get(&key) == Some(&record) {
                None
            } else {
                Some(self.commit(&mut state, Staged::one(record.clone()))?)
            }
        };
        if let Some(w) = wakeups {
            self.durable(w).await?;
        }
        Ok(SettingResponse {
            setting: Setting {
                setting_type: setting_type(&record.name),
                name: record.name,
                value: record.value,
                principal_arn: record.principal_arn,
            },
        })
    }

    /// DeleteAccountSetting: the principal's own value goes; the account
    /// default (or ECS's) is in force again. Deleting an unset setting is
    /// no error. Answers with the setting as it was.
    pub async fn delete_account_setting(
        &self,
        req: DeleteAccountSettingRequest,
        caller: &Caller,
    ) -> Result<SettingResponse> {
        let name = validate::required_str(req.name.as_deref(), "name")?;
        known(name)?;
        let who = principal(req.principal_arn.as_deref(), caller)?;
        let (wakeups, value) = {
            let mut state = self.lock();
            let key = (who.principal_arn.clone(), name.to_owned());
            match state.account_settings.get(&key).cloned() {
                Some(record) => {
                    let mut staged = Staged::default();
                    staged.delete(record.clone());
                    (Some(self.commit(&mut state, staged)?), record.value)
                }
                None => (None, effective(&state, &who, name)),
            }
        };
        if let Some(w) = wakeups {
            self.durable(w).await?;
        }
        Ok(SettingResponse {
            setting: Setting {
                name: name.to_owned(),
                value,
                principal_arn: who.principal_arn,
                setting_type: setting_type(name),
            },
        })
    }

    /// ListAccountSettings: the principal's own settings, or with
    /// `effectiveSettings` every setting's value in force for it; filtered
    /// by `name` and `value`; 10 per page.
    pub fn list_account_settings(
        &self,
        req: ListAccountSettingsRequest,
        caller: &Caller,
    ) -> Result<ListAccountSettingsResponse> {
        if let Some(name) = req.name.as_deref() {
            known(name)?;
        }
        if req.value.is_some() && req.name.is_none() {
            return Err(invalid(
                "ListAccountSettings filters by value only together with name.",
            ));
        }
        if let Some(n) = req.max_results
            && !(1..=10).contains(&n)
        {
            return Err(invalid(format!(
                "maxResults must be between 1 and 10 (got {n})."
            )));
        }
        let who = principal(req.principal_arn.as_deref(), caller)?;
        let effective_settings = req.effective_settings.unwrap_or(false);
        let page = Page::start(
            "ListAccountSettings",
            &(
                &req.name,
                &req.value,
                &who.principal_arn,
                effective_settings,
            ),
            req.next_token.as_deref(),
            Some(req.max_results.unwrap_or(10)),
        )?;
        let state = self.lock();
        let settings: Vec<(String, Setting)> = SETTINGS
            .iter()
            .map(|(n, _, _)| *n)
            .filter(|n| req.name.as_deref().is_none_or(|want| want == *n))
            .filter_map(|n| {
                let own = state
                    .account_settings
                    .get(&(who.principal_arn.clone(), n.to_owned()))
                    .map(|r| r.value.clone());
                let value = if effective_settings {
                    Some(effective(&state, &who, n))
                } else {
                    own
                }?;
                Some(Setting {
                    name: n.to_owned(),
                    value,
                    principal_arn: who.principal_arn.clone(),
                    setting_type: setting_type(n),
                })
            })
            .filter(|s| req.value.as_deref().is_none_or(|v| v == s.value))
            .filter(|s| page.includes(&s.name))
            .map(|s| (s.name.clone(), s))
            .collect();
        let (settings, next_token) = page.collect(settings.into_iter());
        Ok(ListAccountSettingsResponse {
            settings,
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_per_setting() {
        assert!(check_value("containerInsights", "enhanced").is_ok());
        assert!(check_value("containerInsights", "on").is_err());
        assert!(check_value("fargateTaskRetirementWaitPeriod", "14").is_ok());
        let e = check_value("taskLongArnFormat", "disabled")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only long ARNs"), "{e}");
        assert!(check_value("guardDutyActivate", "on").is_err());
        assert!(check_value("nonsense", "on").is_err());
    }

    #[test]
    fn the_setting_in_force_is_the_principals_then_the_accounts_then_ecss() {
        let mut state = State::default();
        let alice = Caller {
            principal_arn: "arn:aws:iam::000000000000:user/ALICE".into(),
            account_id: "000000000000".into(),
        };
        assert_eq!(effective(&state, &alice, "containerInsights"), "disabled");
        let _ = state.install_account_setting(AccountSettingRecord {
            principal_arn: alice.root(),
            name: "containerInsights".into(),
            value: "enabled".into(),
        });
        assert_eq!(effective(&state, &alice, "containerInsights"), "enabled");
        let _ = state.install_account_setting(AccountSettingRecord {
            principal_arn: alice.principal_arn.clone(),
            name: "containerInsights".into(),
            value: "enhanced".into(),
        });
        assert_eq!(effective(&state, &alice, "containerInsights"), "enhanced");
    }
}
