//! The synthetic population of one prefecture: persons, their cards, names,
//! life events and care needs, and the facilities that serve them.

use enclave_core::card::InsurerNumber;
use enclave_core::date::{CivilDate, YearMonth};
use enclave_core::masters::Masters;
use enclave_core::person::Sex;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::names::{FAMILY, FEMALE, MALE};

/// Municipalities (国保 and care insurers) per prefecture, as in
/// `catalog/masters/municipalities.csv`.
const MUNICIPALITIES: u32 = 6;

/// Share of persons by age band (Japan, roughly 2024) and the band's ages.
const AGE_BANDS: [(f64, u32, u32); 6] = [
    (0.115, 0, 14),
    (0.595, 15, 64),
    (0.135, 65, 74),
    (0.10, 75, 84),
    (0.047, 85, 94),
    (0.008, 95, 104),
];

/// An insurance card: insurer number, symbol, number, 枝番.
#[derive(Debug, Clone)]
pub(crate) struct Card {
    pub(crate) insurer: InsurerNumber,
    pub(crate) symbol: String,
    pub(crate) number: String,
    pub(crate) branch: String,
}

/// A person's long-term care: certification and regular providers.
#[derive(Debug, Clone)]
pub(crate) struct CareProfile {
    pub(crate) insurer: InsurerNumber,
    pub(crate) number: String,
    pub(crate) level: &'static str,
    /// Window month of the (first) certification; negative = before the window.
    pub(crate) certified: i32,
    pub(crate) provider: usize,
    pub(crate) service: usize,
}

/// One synthetic person.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Global person number (the truth label).
    pub(crate) id: u64,
    pub(crate) sex: Sex,
    pub(crate) birth: CivilDate,
    pub(crate) given: usize,
    /// (from window month, family name index), ascending.
    pub(crate) families: Vec<(i32, usize)>,
    /// (from window month, card), ascending.
    pub(crate) cards: Vec<(i32, Card)>,
    pub(crate) care: Option<CareProfile>,
    pub(crate) chronic: Vec<usize>,
    pub(crate) clinic: usize,
    pub(crate) pharmacy: usize,
    /// Twin sibling's local index, if any (the pair share a card).
    pub(crate) twin_of: Option<usize>,
    pub(crate) events: Vec<&'static str>,
}

impl Person {
    pub(crate) fn family_at(&self, month: i32) -> usize {
        self.families
            .iter()
            .rev()
            .find(|(from, _)| *from <= month)
            .map_or(self.families[0].1, |(_, f)| *f)
    }

    pub(crate) fn card_at(&self, month: i32) -> &Card {
        self.cards
            .iter()
            .rev()
            .find(|(from, _)| *from <= month)
            .map_or(&self.cards[0].1, |(_, c)| c)
    }

    pub(crate) fn given_name(&self) -> (&'static str, &'static str) {
        match self.sex {
            Sex::Male => MALE[self.given],
            Sex::Female => FEMALE[self.given],
        }
    }

    pub(crate) fn age_at(&self, month: YearMonth) -> i32 {
        self.birth.age_on(month.first_day())
    }
}

/// How a facility's software writes identities.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) halfwidth_kana: bool,
    pub(crate) kana_space: bool,
    pub(crate) fullwidth_card: bool,
    pub(crate) zero_padded_kokuho: bool,
}

/// A facility of the prefecture.
#[derive(Debug, Clone)]
pub(crate) struct Facility {
    /// 医療機関コード (7 digits) or, for care providers, the last 7 digits of 事業所番号.
    pub(crate) code: String,
    pub(crate) style: Style,
    pub(crate) dpc: bool,
}

/// The facilities of one prefecture.
#[derive(Debug)]
pub(crate) struct Facilities {
    pub(crate) clinics: Vec<Facility>,
    pub(crate) hospitals: Vec<Facility>,
    pub(crate) pharmacies: Vec<Facility>,
    pub(crate) providers: Vec<Facility>,
}

fn facilities(
    rng: &mut ChaCha8Rng,
    first_digit: char,
    count: usize,
    dpc_share: f64,
) -> Vec<Facility> {
    (0..count)
        .map(|i| Facility {
            code: format!("{first_digit}{:06}", i + 1),
            style: Style {
                halfwidth_kana: rng.random_bool(0.4),
                kana_space: rng.random_bool(0.6),
                fullwidth_card: rng.random_bool(0.5),
                zero_padded_kokuho: rng.random_bool(0.3),
            },
            dpc: rng.random_bool(dpc_share),
        })
        .collect()
}

impl Facilities {
    pub(crate) fn new(rng: &mut ChaCha8Rng, persons: usize) -> Facilities {
        Facilities {
            clinics: facilities(rng, '1', (persons / 250).max(3), 0.0),
            hospitals: facilities(rng, '2', (persons / 2500).max(2), 0.5),
            pharmacies: facilities(rng, '4', (persons / 400).max(2), 0.0),
            providers: facilities(rng, '7', (persons / 800).max(2), 0.0),
        }
    }
}

/// Generates the persons of one prefecture.
pub(crate) struct PopulationBuilder<'a> {
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) prefecture: u8,
    pub(crate) start: YearMonth,
    pub(crate) months: i32,
    pub(crate) facilities: &'a Facilities,
}

impl PopulationBuilder<'_> {
    pub(crate) fn build(&mut self, first_id: u64, count: usize) -> Vec<Person> {
        let mut persons: Vec<Person> = Vec::with_capacity(count);
        while persons.len() < count {
            let index = persons.len();
            let person = self.person(first_id + index as u64);
            let twins = person.age_at(self.start) < 15
                && persons.len() + 1 < count
                && self.rng.random_bool(0.015);
            persons.push(person);
            if twins {
                let twin = self.twin_of(&mut persons[index], first_id + index as u64 + 1, index);
                persons.push(twin);
            }
        }
        persons
    }

    fn person(&mut self, id: u64) -> Person {
        let sex = if self.rng.random_bool(0.51) {
            Sex::Female
        } else {
            Sex::Male
        };
        let birth = self.birth();
        let given = self.rng.random_range(
            0..match sex {
                Sex::Male => MALE.len(),
                Sex::Female => FEMALE.len(),
            },
        );
        let mut person = Person {
            id,
            sex,
            birth,
            given,
            families: vec![(0, self.rng.random_range(0..FAMILY.len()))],
            cards: Vec::new(),
            care: None,
            chronic: Vec::new(),
            clinic: self.rng.random_range(0..self.facilities.clinics.len()),
            pharmacy: self.rng.random_range(0..self.facilities.pharmacies.len()),
            twin_of: None,
            events: Vec::new(),
        };
        let age = person.age_at(self.start);
        person.cards.push((0, self.first_card(age)));
        self.life_events(&mut person);
        person.chronic = self.chronic_diseases(age);
        person.care = self.care(&person);
        person
    }

    fn birth(&mut self) -> CivilDate {
        let draw: f64 = self.rng.random();
        let mut cumulative = 0.0;
        let (_, low, high) = AGE_BANDS
            .iter()
            .copied()
            .find(|(share, _, _)| {
                cumulative += share;
                draw < cumulative
            })
            .unwrap_or(AGE_BANDS[1]);
        let age_days = self
            .rng
            .random_range(i64::from(low) * 365..i64::from(high + 1) * 365);
        CivilDate::from_days_since_epoch(
            self.start.first_day().days_since_epoch() - age_days as i32,
        )
    }

    /// The prefecture's `municipality`-th municipality of the master.
    fn municipal_insurer(&self, municipality: u32) -> InsurerNumber {
        let code = Masters::get()
            .municipalities
            .iter()
            .filter(|m| m.prefecture == self.prefecture)
            .nth(municipality as usize)
            .map(|m| m.code.as_str())
            .unwrap_or_else(|| unreachable!("the master holds six municipalities per prefecture"));
        InsurerNumber::parse(code)
            .unwrap_or_else(|_| unreachable!("master codes carry their check digit"))
    }

    fn employee_insurer(&mut self) -> InsurerNumber {
        let law = match self.rng.random_range(0..100) {
            0..55 => "01",
            55..85 => "06",
            _ => ["31", "32", "33", "34"][self.rng.random_range(0..4)],
        };
        let body = format!(
            "{law}{:02}{:03}",
            self.prefecture,
            self.rng.random_range(1..60)
        );
        InsurerNumber::from_body(&body)
            .unwrap_or_else(|_| unreachable!("prefecture codes are 01-47"))
    }

    fn card(&mut self, insurer: InsurerNumber) -> Card {
        Card {
            symbol: format!("{}", self.rng.random_range(1000..99_999_999)),
            number: format!("{}", self.rng.random_range(1..9_999_999)),
            branch: format!("{:02}", self.rng.random_range(0..3)),
            insurer,
        }
    }

    fn first_card(&mut self, age: i32) -> Card {
        let insurer = if age >= 75 {
            let body = format!(
                "39{:02}{:03}",
                self.prefecture,
                self.rng.random_range(1..20)
            );
            InsurerNumber::from_body(&body)
                .unwrap_or_else(|_| unreachable!("prefecture codes are 01-47"))
        } else if self.rng.random_bool(if age >= 65 { 0.7 } else { 0.3 }) {
            let municipality = self.rng.random_range(0..MUNICIPALITIES);
            self.municipal_insurer(municipality)
        } else {
            self.employee_insurer()
        };
        self.card(insurer)
    }

    /// Job changes, retirement, the 75th birthday and marriage inside the window.
    fn life_events(&mut self, person: &mut Person) {
        let age = person.age_at(self.start);
        let employed = person.cards[0]
            .1
            .insurer
            .law_code()
            .is_some_and(|law| law != "39");
        let month = self.rng.random_range(1..self.months);
        if employed && (22..60).contains(&age) && self.rng.random_bool(0.08) {
            let insurer = self.employee_insurer();
            let card = self.card(insurer);
            person.cards.push((month, card));
            person.events.push("job_change");
            if person.sex == Sex::Female && (24..39).contains(&age) && self.rng.random_bool(0.3) {
                self.marry(person, month);
                person.events.push("marriage_and_job_change");
            }
        } else if employed && (60..65).contains(&age) && self.rng.random_bool(0.25) {
            let municipality = self.rng.random_range(0..MUNICIPALITIES);
            let insurer = self.municipal_insurer(municipality);
            let card = self.card(insurer);
            person.cards.push((month, card));
            person.events.push("retirement");
        } else if person.sex == Sex::Female && (24..39).contains(&age) && self.rng.random_bool(0.1)
        {
            self.marry(person, month);
        }
        self.turn_75(person);
    }

    fn marry(&mut self, person: &mut Person, month: i32) {
        let family = (person.families[0].1 + self.rng.random_range(1..FAMILY.len())) % FAMILY.len();
        person.families.push((month, family));
        person.events.push("marriage");
    }

    fn turn_75(&mut self, person: &mut Person) {
        let birthday_75 = CivilDate::new(
            person.birth.year + 75,
            person.birth.month,
            person.birth.day.min(28),
        );
        let Ok(birthday) = birthday_75 else { return };
        let month = birthday.year_month().index() - self.start.index();
        if (1..self.months).contains(&month) {
            let body = format!(
                "39{:02}{:03}",
                self.prefecture,
                self.rng.random_range(1..20)
            );
            let insurer = InsurerNumber::from_body(&body)
                .unwrap_or_else(|_| unreachable!("prefecture codes are 01-47"));
            let card = self.card(insurer);
            person.cards.push((month, card));
            person.events.push("turned_75");
        }
    }

    fn chronic_diseases(&mut self, age: i32) -> Vec<usize> {
        let diseases = &Masters::get().diseases;
        let count = match age {
            0..40 => self.rng.random_range(0..2),
            40..65 => self.rng.random_range(1..3),
            _ => self.rng.random_range(1..4),
        };
        (0..count)
            .map(|_| {
                // Prefer diseases typical of the person's age.
                let mut best = self.rng.random_range(0..diseases.len());
                for _ in 0..3 {
                    let other = self.rng.random_range(0..diseases.len());
                    if (diseases[other].typical_age as i32 - age).abs()
                        < (diseases[best].typical_age as i32 - age).abs()
                    {
                        best = other;
                    }
                }
                best
            })
            .collect()
    }

    fn care(&mut self, person: &Person) -> Option<CareProfile> {
        let age = person.age_at(self.start);
        let probability = match age {
            ..65 => 0.002,
            65..75 => 0.04,
            75..85 => 0.2,
            _ => 0.5,
        };
        if !self.rng.random_bool(probability) {
            return None;
        }
        const LEVELS: [&str; 7] = ["12", "13", "21", "22", "23", "24", "25"];
        let level = LEVELS[self.rng.random_range(0..LEVELS.len())];
        let services = &Masters::get().care_services;
        let municipality = self.rng.random_range(0..MUNICIPALITIES);
        Some(CareProfile {
            insurer: self.municipal_insurer(municipality),
            number: format!("{:010}", 1_000_000_000 + person.id),
            level,
            certified: self.rng.random_range(-24..self.months),
            provider: self.rng.random_range(0..self.facilities.providers.len()),
            service: self.rng.random_range(0..services.len()),
        })
    }

    /// A same-sex twin of `first`, a dependent on the same card.
    fn twin_of(&mut self, first: &mut Person, id: u64, first_index: usize) -> Person {
        let names = if first.sex == Sex::Male {
            MALE.len()
        } else {
            FEMALE.len()
        };
        let mut twin = first.clone();
        twin.id = id;
        twin.given = (first.given + self.rng.random_range(1..names)) % names;
        twin.twin_of = Some(first_index);
        twin.care = None;
        for (_, card) in &mut twin.cards {
            card.branch = format!("{:02}", card.branch.parse::<u32>().unwrap_or(0) + 1);
        }
        twin.events.push("twin");
        first.events.push("twin");
        twin
    }
}
