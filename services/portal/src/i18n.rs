//! Japanese first, English on request: the visitor's language and the
//! portal's texts, each written as a Japanese/English pair where it is used.

/// The language a page is rendered in; Japanese unless the visitor chose
/// English (the `lang` cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    /// The cookie and `hreflang` code.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, offered by the switch in the header.
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    /// The language's own name, for the switch.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Ja => "日本語",
            Lang::En => "English",
        }
    }

    /// Picks the text of this language.
    pub(crate) fn t<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }

    /// The name of an application or output status.
    pub(crate) fn status(self, status: &str) -> &'static str {
        let (ja, en) = match status {
            "draft" => ("下書き", "Draft"),
            "submitted" => ("提出済み", "Submitted"),
            "under_review" => ("審査中", "Under review"),
            "approved" => ("承認", "Approved"),
            "conditionally_approved" => ("条件付き承認", "Approved with conditions"),
            "rejected" => ("不承認", "Rejected"),
            "returned" => ("差し戻し", "Returned"),
            "withdrawn" => ("取り下げ", "Withdrawn"),
            "expired" => ("期間満了", "Expired"),
            "closed" => ("終了", "Closed"),
            "refused_by_check" => ("自動チェックで不可", "Refused by the check"),
            "awaiting_review" => ("確認待ち", "Awaiting review"),
            "destroyed" => ("消去済み", "Destroyed"),
            "quarantined" => ("隔離中(審査待ち)", "Quarantined, awaiting review"),
            "refused_by_screening" => ("自動審査で不可", "Refused by screening"),
            "active" => ("有効", "Active"),
            _ => ("不明", "Unknown"),
        };
        self.t(ja, en)
    }

    /// What happened at a step of a history (`enclave_review::Step`);
    /// `None` for a history written before steps were recorded.
    pub(crate) fn step(self, step: &str) -> Option<&'static str> {
        let (ja, en) = match step {
            "created" => ("作成", "Created"),
            "edited" => ("編集", "Edited"),
            "submitted" => ("審査に提出", "Submitted for review"),
            "amendment_submitted" => ("変更申請を提出", "Amendment submitted for review"),
            "reviewers_assigned" => ("審査委員を指名", "Reviewers assigned"),
            "conflict_declared" => ("利益相反を申告", "Conflict of interest declared"),
            "vote_recorded" => ("投票を記録", "Vote recorded"),
            "decided" => ("決定", "Decided"),
            "withdrawn" => ("申請者が取り下げ", "Withdrawn by the applicant"),
            "closed" => ("終了", "Closed"),
            "grant_ended" => ("利用期間が終了", "The grant period ended"),
            "check_passed" => ("自動チェックを通過", "Automatic check passed"),
            "check_refused" => ("自動チェックで不可", "Automatic check refused"),
            "reviewed" => ("確認", "Reviewed"),
            "destroyed" => ("終了に伴い消去", "Destroyed when the project closed"),
            "screening_passed" => (
                "自動審査を通過、隔離保管",
                "Screening passed; held in quarantine",
            ),
            "screening_refused" => ("自動審査で不可", "Refused by screening"),
            "quarantine_expired" => (
                "審査されないまま期限切れ、消去",
                "Not reviewed in time; destroyed",
            ),
            "" => return None,
            _ => ("不明", "Unknown"),
        };
        Some(self.t(ja, en))
    }

    /// A rounding option (`none`, `5`, `10`) as shown to the reader.
    pub(crate) fn rounding(self, rounding: &str) -> String {
        match rounding {
            "none" => self.t("なし", "none").to_string(),
            base => match self {
                Lang::Ja => format!("{base} の倍数"),
                Lang::En => format!("to {base}"),
            },
        }
    }

    /// The name of an account role.
    pub(crate) fn role(self, role: &str) -> &'static str {
        let (ja, en) = match role {
            "researcher" => ("研究者", "Researcher"),
            "reviewer" => ("審査委員", "Reviewer"),
            "chair" => ("委員長", "Chair"),
            "steward" => ("データ管理者", "Data steward"),
            "operator" => ("運用担当", "Operator"),
            "admin" => ("管理者", "Administrator"),
            _ => ("不明", "Unknown"),
        };
        self.t(ja, en)
    }

    /// The name of a catalog column class.
    pub(crate) fn column_class(self, class: &str) -> &'static str {
        let (ja, en) = match class {
            "person_key" => ("個人キー", "Person key"),
            "record_key" => ("レコードキー", "Record key"),
            "quasi_identifier" => ("準識別子", "Quasi-identifier"),
            "sensitive" => ("要配慮", "Sensitive"),
            "code" => ("コード", "Code"),
            "measure" => ("数量", "Measure"),
            _ => ("不明", "Unknown"),
        };
        self.t(ja, en)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_is_the_default_and_codes_round_trip() {
        assert_eq!(Lang::default(), Lang::Ja);
        for lang in [Lang::Ja, Lang::En] {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
            assert_eq!(lang.other().other(), lang);
        }
        assert_eq!(Lang::from_code("fr"), None);
    }

    #[test]
    fn every_history_step_has_a_name_in_both_languages() {
        for step in enclave_review::Step::ALL {
            let (ja, en) = (Lang::Ja.step(step.name()), Lang::En.step(step.name()));
            assert!(ja.is_some() && ja != en, "{step:?}");
            assert_ne!(en, Some("Unknown"), "{step:?}");
        }
        assert_eq!(Lang::Ja.step(""), None);
    }

    #[test]
    fn every_status_has_a_name_in_both_languages() {
        for status in ["draft", "under_review", "approved", "awaiting_review"] {
            assert_ne!(Lang::Ja.status(status), Lang::En.status(status));
            assert_ne!(Lang::En.status(status), "Unknown");
        }
    }
}
