//! Civil dates and the Japanese era calendar (和暦).
//!
//! Receipt (UKE) and care files write dates as `GYYMMDD` and months as `GYYMM`,
//! where `G` is the era code: 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和. DPC files use
//! Gregorian `YYYYMMDD`. Linkage must hash one canonical form, so every
//! parser converts to [`CivilDate`] / [`YearMonth`] first.

use std::fmt;

/// Why a date field could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("expected {expected} digits")]
    Length { expected: usize },
    #[error("not all digits")]
    NotDigits,
    #[error("unknown era code")]
    UnknownEra,
    #[error("no such calendar date")]
    InvalidDate,
    #[error("date lies outside its era")]
    OutsideEra,
}

/// A Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// A Gregorian calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

/// The eras that can appear in birth and service dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    Meiji,
    Taisho,
    Showa,
    Heisei,
    Reiwa,
}

const ERAS: [Era; 5] = [Era::Meiji, Era::Taisho, Era::Showa, Era::Heisei, Era::Reiwa];

impl Era {
    /// The one-digit code used in `GYYMMDD`.
    pub fn code(self) -> u8 {
        match self {
            Era::Meiji => 1,
            Era::Taisho => 2,
            Era::Showa => 3,
            Era::Heisei => 4,
            Era::Reiwa => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Era> {
        ERAS.into_iter().find(|era| era.code() == code)
    }

    /// First day of the era. 明治 counts from 1868-01-01, as the Gregorian
    /// calendar was adopted within it; the others from their accession day.
    pub fn first_day(self) -> CivilDate {
        match self {
            Era::Meiji => CivilDate::new_unchecked(1868, 1, 1),
            Era::Taisho => CivilDate::new_unchecked(1912, 7, 30),
            Era::Showa => CivilDate::new_unchecked(1926, 12, 25),
            Era::Heisei => CivilDate::new_unchecked(1989, 1, 8),
            Era::Reiwa => CivilDate::new_unchecked(2019, 5, 1),
        }
    }

    /// Last day of the era, `None` for the current one.
    pub fn last_day(self) -> Option<CivilDate> {
        let next = ERAS.into_iter().skip_while(|e| *e != self).nth(1)?;
        Some(next.first_day().pred())
    }

    /// The era in force on `date`.
    pub fn of(date: CivilDate) -> Option<Era> {
        ERAS.into_iter().rev().find(|era| era.first_day() <= date)
    }

    fn gregorian_year(self, era_year: u32) -> i32 {
        self.first_day().year + era_year as i32 - 1
    }
}

fn parse_digits(text: &str, expected: usize) -> Result<u32, DateError> {
    if text.len() != expected {
        return Err(DateError::Length { expected });
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DateError::NotDigits);
    }
    text.parse().map_err(|_| DateError::NotDigits)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl CivilDate {
    /// A checked date.
    pub fn new(year: i32, month: u32, day: u32) -> Result<CivilDate, DateError> {
        if day == 0 || day > days_in_month(year, month) {
            return Err(DateError::InvalidDate);
        }
        Ok(CivilDate { year, month, day })
    }

    const fn new_unchecked(year: i32, month: u32, day: u32) -> CivilDate {
        CivilDate { year, month, day }
    }

    /// Parses Gregorian `YYYYMMDD`.
    pub fn parse_yyyymmdd(text: &str) -> Result<CivilDate, DateError> {
        parse_digits(text, 8)?;
        let year = text[0..4].parse().map_err(|_| DateError::NotDigits)?;
        let month = text[4..6].parse().map_err(|_| DateError::NotDigits)?;
        let day = text[6..8].parse().map_err(|_| DateError::NotDigits)?;
        CivilDate::new(year, month, day)
    }

    /// Parses era `GYYMMDD` and checks the date lies inside its era.
    pub fn parse_wareki(text: &str) -> Result<CivilDate, DateError> {
        parse_digits(text, 7)?;
        let era = Era::from_code(text.as_bytes()[0] - b'0').ok_or(DateError::UnknownEra)?;
        let era_year: u32 = text[1..3].parse().map_err(|_| DateError::NotDigits)?;
        if era_year == 0 {
            return Err(DateError::InvalidDate);
        }
        let month = text[3..5].parse().map_err(|_| DateError::NotDigits)?;
        let day = text[5..7].parse().map_err(|_| DateError::NotDigits)?;
        let date = CivilDate::new(era.gregorian_year(era_year), month, day)?;
        let after_end = era.last_day().is_some_and(|last| date > last);
        if date < era.first_day() || after_end {
            return Err(DateError::OutsideEra);
        }
        Ok(date)
    }

    /// Renders as era `GYYMMDD`.
    pub fn to_wareki(self) -> String {
        let era = Era::of(self).unwrap_or(Era::Meiji);
        let era_year = self.year - era.first_day().year + 1;
        format!(
            "{}{era_year:02}{:02}{:02}",
            era.code(),
            self.month,
            self.day
        )
    }

    /// Renders as Gregorian `YYYYMMDD`.
    pub fn to_yyyymmdd(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    pub fn year_month(self) -> YearMonth {
        YearMonth {
            year: self.year,
            month: self.month,
        }
    }

    /// Days since 1970-01-01 (Arrow `Date32`).
    pub fn days_since_epoch(self) -> i32 {
        // Howard Hinnant's days_from_civil.
        let year = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = self.month as i32;
        let day_of_year =
            (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + self.day as i32 - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01.
    pub fn from_days_since_epoch(days: i32) -> CivilDate {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = year_of_era + era * 400 + i32::from(month <= 2);
        CivilDate { year, month, day }
    }

    /// The previous day.
    pub fn pred(self) -> CivilDate {
        CivilDate::from_days_since_epoch(self.days_since_epoch() - 1)
    }

    /// Whole years of age reached on `on` (Japanese law: the day before the birthday).
    pub fn age_on(self, on: CivilDate) -> i32 {
        let mut age = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            age -= 1;
        }
        age
    }
}

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Result<YearMonth, DateError> {
        if !(1..=12).contains(&month) {
            return Err(DateError::InvalidDate);
        }
        Ok(YearMonth { year, month })
    }

    /// Parses era `GYYMM` and checks the month overlaps its era.
    pub fn parse_wareki(text: &str) -> Result<YearMonth, DateError> {
        parse_digits(text, 5)?;
        let era = Era::from_code(text.as_bytes()[0] - b'0').ok_or(DateError::UnknownEra)?;
        let era_year: u32 = text[1..3].parse().map_err(|_| DateError::NotDigits)?;
        if era_year == 0 {
            return Err(DateError::InvalidDate);
        }
        let month = text[3..5].parse().map_err(|_| DateError::NotDigits)?;
        let ym = YearMonth::new(era.gregorian_year(era_year), month)?;
        let after_end = era.last_day().is_some_and(|last| ym > last.year_month());
        if ym < era.first_day().year_month() || after_end {
            return Err(DateError::OutsideEra);
        }
        Ok(ym)
    }

    /// Parses Gregorian `YYYYMM`.
    pub fn parse_yyyymm(text: &str) -> Result<YearMonth, DateError> {
        parse_digits(text, 6)?;
        let year = text[0..4].parse().map_err(|_| DateError::NotDigits)?;
        YearMonth::new(year, text[4..6].parse().map_err(|_| DateError::NotDigits)?)
    }

    /// Renders as era `GYYMM`, using the era in force on the month's last day
    /// (2019-05 is 令和 01 05; 2019-04 is 平成 31 04).
    pub fn to_wareki(self) -> String {
        let last =
            CivilDate::new_unchecked(self.year, self.month, days_in_month(self.year, self.month));
        let era = Era::of(last).unwrap_or(Era::Meiji);
        let era_year = self.year - era.first_day().year + 1;
        format!("{}{era_year:02}{:02}", era.code(), self.month)
    }

    /// Renders as `YYYYMM`.
    pub fn to_yyyymm(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }

    /// Months since year 0, so months can be subtracted and compared cheaply.
    pub fn index(self) -> i32 {
        self.year * 12 + self.month as i32 - 1
    }

    pub fn from_index(index: i32) -> YearMonth {
        YearMonth {
            year: index.div_euclid(12),
            month: index.rem_euclid(12) as u32 + 1,
        }
    }

    pub fn first_day(self) -> CivilDate {
        CivilDate::new_unchecked(self.year, self.month, 1)
    }

    pub fn days(self) -> u32 {
        days_in_month(self.year, self.month)
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `YYYY-MM`, the form used for `service_month` columns and partitions.
impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds.
pub fn utc_minute(unix_seconds: i64) -> String {
    format!("{} UTC", minute(unix_seconds))
}

/// Japan Standard Time's offset from UTC (Japan keeps no daylight saving).
const JST_OFFSET_SECONDS: i64 = 9 * 3600;

/// `YYYY-MM-DD HH:MM JST` of Unix seconds: how times are shown to the
/// committee and researchers.
pub fn jst_minute(unix_seconds: i64) -> String {
    format!("{} JST", minute(unix_seconds + JST_OFFSET_SECONDS))
}

fn minute(unix_seconds: i64) -> String {
    let day = CivilDate::from_days_since_epoch(unix_seconds.div_euclid(86_400) as i32);
    let minutes = unix_seconds.rem_euclid(86_400) / 60;
    format!("{day} {:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_utc_and_japan_standard_time() {
        // 2026-12-06 20:30 UTC is 2026-12-07 05:30 in Japan.
        let at = 1_796_589_000;
        assert_eq!(utc_minute(at), "2026-12-06 20:30 UTC");
        assert_eq!(jst_minute(at), "2026-12-07 05:30 JST");
    }

    #[test]
    fn era_dates_convert_to_gregorian() {
        assert_eq!(
            CivilDate::parse_wareki("3450612").unwrap(),
            CivilDate::new(1970, 6, 12).unwrap()
        );
        assert_eq!(
            CivilDate::parse_wareki("4010108").unwrap(),
            CivilDate::new(1989, 1, 8).unwrap()
        );
        assert_eq!(
            CivilDate::parse_wareki("3640107").unwrap(),
            CivilDate::new(1989, 1, 7).unwrap()
        );
        assert_eq!(
            CivilDate::parse_wareki("5010501").unwrap(),
            CivilDate::new(2019, 5, 1).unwrap()
        );
        assert_eq!(
            CivilDate::parse_wareki("4310430").unwrap(),
            CivilDate::new(2019, 4, 30).unwrap()
        );
        assert_eq!(
            CivilDate::parse_wareki("2150101").unwrap(),
            CivilDate::new(1926, 1, 1).unwrap()
        );
        assert_eq!(
            CivilDate::parse_wareki("1450101").unwrap(),
            CivilDate::new(1912, 1, 1).unwrap()
        );
    }

    #[test]
    fn era_dates_outside_their_era_are_refused() {
        assert_eq!(
            CivilDate::parse_wareki("4310501"),
            Err(DateError::OutsideEra)
        );
        assert_eq!(
            CivilDate::parse_wareki("3640108"),
            Err(DateError::OutsideEra)
        );
        assert_eq!(
            CivilDate::parse_wareki("5010430"),
            Err(DateError::OutsideEra)
        );
        assert_eq!(
            CivilDate::parse_wareki("6010101"),
            Err(DateError::UnknownEra)
        );
        assert_eq!(
            CivilDate::parse_wareki("4010230"),
            Err(DateError::InvalidDate)
        );
        assert_eq!(
            CivilDate::parse_wareki("40101"),
            Err(DateError::Length { expected: 7 })
        );
        assert_eq!(
            CivilDate::parse_wareki("4O10101"),
            Err(DateError::NotDigits)
        );
    }

    #[test]
    fn era_and_gregorian_forms_of_one_birthday_agree() {
        let era = CivilDate::parse_wareki("3450612").unwrap();
        let gregorian = CivilDate::parse_yyyymmdd("19700612").unwrap();
        assert_eq!(era, gregorian);
        assert_eq!(gregorian.to_wareki(), "3450612");
    }

    #[test]
    fn era_months_round_trip() {
        assert_eq!(
            YearMonth::parse_wareki("50504").unwrap(),
            YearMonth::new(2023, 4).unwrap()
        );
        assert_eq!(YearMonth::new(2019, 4).unwrap().to_wareki(), "43104");
        assert_eq!(YearMonth::new(2019, 5).unwrap().to_wareki(), "50105");
        assert_eq!(YearMonth::parse_wareki("43105"), Err(DateError::OutsideEra));
        assert_eq!(
            YearMonth::parse_wareki("50113"),
            Err(DateError::InvalidDate)
        );
    }

    #[test]
    fn epoch_days_round_trip() {
        for days in [-30_000, -1, 0, 1, 10_957, 19_000, 20_000] {
            assert_eq!(
                CivilDate::from_days_since_epoch(days).days_since_epoch(),
                days
            );
        }
        assert_eq!(
            CivilDate::new(2000, 1, 1).unwrap().days_since_epoch(),
            10_957
        );
    }

    #[test]
    fn age_turns_on_the_birthday() {
        let birth = CivilDate::new(1950, 6, 15).unwrap();
        assert_eq!(birth.age_on(CivilDate::new(2025, 6, 14).unwrap()), 74);
        assert_eq!(birth.age_on(CivilDate::new(2025, 6, 15).unwrap()), 75);
    }
}
