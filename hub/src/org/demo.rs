//! The demo organisation, shaped like the seed's: the Shaanxi province headquarters, its 12
//! cities (the ten prefecture-level cities plus 杨凌示范区 and 韩城市, as the seed counts
//! them), their 106 real county-level divisions (杨陵区 under 杨凌; 韩城 is itself
//! county-level and has none), 83 universities, 178 enterprises and 718 local stations
//! (青春驿站). Deterministic: the same tree, ids and names every time.
//!
//! Ids: `sx` (headquarters), the city's pinyin (`xian`, `baoji`, …), `<city>-NN` for
//! counties, `uni-NNN`, `ent-NNN`, `stn-NNN` for grassroots units. Universities hang
//! under their city; enterprises and stations are dealt round-robin to the 106 counties and
//! 韩城. The first universities carry real names; the rest, and every enterprise and
//! station, have generated names marked 演示 (demo) where they could be mistaken for real
//! ones.

use super::{Kind, Level, UnitSpec};

/// The headquarters' id; its presence tells that the demo organisation is loaded.
pub const ROOT_ID: &str = "sx";
pub const CITIES: usize = 12;
pub const COUNTIES: usize = 106;
pub const UNIVERSITIES: usize = 83;
pub const ENTERPRISES: usize = 178;
pub const STATIONS: usize = 718;
/// Every unit of the demo organisation.
pub const TOTAL: usize = 1 + CITIES + COUNTIES + UNIVERSITIES + ENTERPRISES + STATIONS;

/// (id, name, region tag, county-level divisions).
const CITY_TABLE: [(&str, &str, &str, &[&str]); CITIES] = [
    (
        "xian",
        "西安市",
        "关中",
        &[
            "新城区",
            "碑林区",
            "莲湖区",
            "灞桥区",
            "未央区",
            "雁塔区",
            "阎良区",
            "临潼区",
            "长安区",
            "高陵区",
            "鄠邑区",
            "蓝田县",
            "周至县",
        ],
    ),
    (
        "baoji",
        "宝鸡市",
        "关中",
        &[
            "渭滨区",
            "金台区",
            "陈仓区",
            "凤翔区",
            "岐山县",
            "扶风县",
            "眉县",
            "陇县",
            "千阳县",
            "麟游县",
            "凤县",
            "太白县",
        ],
    ),
    (
        "xianyang",
        "咸阳市",
        "关中",
        &[
            "秦都区",
            "渭城区",
            "三原县",
            "泾阳县",
            "乾县",
            "礼泉县",
            "永寿县",
            "长武县",
            "旬邑县",
            "淳化县",
            "武功县",
            "兴平市",
            "彬州市",
        ],
    ),
    (
        "tongchuan",
        "铜川市",
        "关中",
        &["王益区", "印台区", "耀州区", "宜君县"],
    ),
    (
        "weinan",
        "渭南市",
        "关中",
        &[
            "临渭区",
            "华州区",
            "潼关县",
            "大荔县",
            "合阳县",
            "澄城县",
            "蒲城县",
            "白水县",
            "富平县",
            "华阴市",
        ],
    ),
    (
        "yanan",
        "延安市",
        "陕北",
        &[
            "宝塔区",
            "安塞区",
            "延长县",
            "延川县",
            "志丹县",
            "吴起县",
            "甘泉县",
            "富县",
            "洛川县",
            "宜川县",
            "黄龙县",
            "黄陵县",
            "子长市",
        ],
    ),
    (
        "yulin",
        "榆林市",
        "陕北",
        &[
            "榆阳区",
            "横山区",
            "府谷县",
            "靖边县",
            "定边县",
            "绥德县",
            "米脂县",
            "佳县",
            "吴堡县",
            "清涧县",
            "子洲县",
            "神木市",
        ],
    ),
    (
        "hanzhong",
        "汉中市",
        "陕南",
        &[
            "汉台区",
            "南郑区",
            "城固县",
            "洋县",
            "西乡县",
            "勉县",
            "宁强县",
            "略阳县",
            "镇巴县",
            "留坝县",
            "佛坪县",
        ],
    ),
    (
        "ankang",
        "安康市",
        "陕南",
        &[
            "汉滨区",
            "汉阴县",
            "石泉县",
            "宁陕县",
            "紫阳县",
            "岚皋县",
            "平利县",
            "镇坪县",
            "白河县",
            "旬阳市",
        ],
    ),
    (
        "shangluo",
        "商洛市",
        "陕南",
        &[
            "商州区",
            "洛南县",
            "丹凤县",
            "商南县",
            "山阳县",
            "镇安县",
            "柞水县",
        ],
    ),
    ("yangling", "杨凌示范区", "关中", &["杨陵区"]),
    ("hancheng", "韩城市", "关中", &[]),
];

/// Real universities, by city id.
const REAL_UNIVERSITIES: [(&str, &str); 36] = [
    ("xian", "西安交通大学"),
    ("xian", "西北工业大学"),
    ("xian", "西北大学"),
    ("xian", "陕西师范大学"),
    ("xian", "长安大学"),
    ("xian", "西安电子科技大学"),
    ("xian", "西安建筑科技大学"),
    ("xian", "西安理工大学"),
    ("xian", "西安科技大学"),
    ("xian", "西安石油大学"),
    ("xian", "西安工业大学"),
    ("xian", "西安工程大学"),
    ("xian", "西安邮电大学"),
    ("xian", "西安外国语大学"),
    ("xian", "西北政法大学"),
    ("xian", "西安财经大学"),
    ("xian", "陕西科技大学"),
    ("xian", "西安医学院"),
    ("xian", "西安音乐学院"),
    ("xian", "西安美术学院"),
    ("xian", "西安体育学院"),
    ("xian", "西安文理学院"),
    ("xian", "西安航空学院"),
    ("baoji", "宝鸡文理学院"),
    ("xianyang", "咸阳师范学院"),
    ("xianyang", "陕西中医药大学"),
    ("xianyang", "西藏民族大学"),
    ("weinan", "渭南师范学院"),
    ("yanan", "延安大学"),
    ("yulin", "榆林学院"),
    ("hanzhong", "陕西理工大学"),
    ("ankang", "安康学院"),
    ("shangluo", "商洛学院"),
    ("yangling", "西北农林科技大学"),
    ("yangling", "杨凌职业技术学院"),
    ("tongchuan", "铜川职业技术学院"),
];

/// Where the generated universities go, in turn (Xi'an has most, as in life).
const UNIVERSITY_CITIES: [&str; 8] = [
    "xian", "xian", "xian", "xianyang", "baoji", "weinan", "hanzhong", "yanan",
];

fn spec(
    id: String,
    parent: &str,
    level: Level,
    kind: Kind,
    name: String,
    tags: &[&str],
) -> UnitSpec {
    UnitSpec {
        id,
        parent: Some(parent.to_owned()),
        level,
        kind,
        name,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
    }
}

/// The demo organisation, parents before children.
pub fn units() -> Vec<UnitSpec> {
    let mut units = Vec::with_capacity(TOTAL);
    units.push(UnitSpec {
        id: ROOT_ID.to_owned(),
        parent: None,
        level: Level::Headquarters,
        kind: Kind::Headquarters,
        name: "陕西省总部".to_owned(),
        tags: vec!["省级".to_owned()],
    });
    // Places that hold enterprises and stations: (id, name).
    let mut holders: Vec<(String, String)> = Vec::new();
    for (city_id, city_name, region, counties) in CITY_TABLE {
        units.push(spec(
            city_id.to_owned(),
            ROOT_ID,
            Level::City,
            Kind::CityOffice,
            city_name.to_owned(),
            &[region],
        ));
        if counties.is_empty() {
            holders.push((city_id.to_owned(), city_name.to_owned()));
        }
        for (index, county) in counties.iter().enumerate() {
            let id = format!("{city_id}-{:02}", index + 1);
            units.push(spec(
                id.clone(),
                city_id,
                Level::County,
                Kind::CountyOffice,
                (*county).to_owned(),
                &[],
            ));
            holders.push((id, (*county).to_owned()));
        }
    }
    for number in 1..=UNIVERSITIES {
        let (city, name) = match REAL_UNIVERSITIES.get(number - 1) {
            Some(&(city, name)) => (city, name.to_owned()),
            None => {
                let city = UNIVERSITY_CITIES[number % UNIVERSITY_CITIES.len()];
                let city_name = CITY_TABLE
                    .iter()
                    .find(|entry| entry.0 == city)
                    .map_or("陕西", |entry| entry.1.trim_end_matches('市'));
                (city, format!("{city_name}演示学院{number:03}"))
            }
        };
        units.push(spec(
            format!("uni-{number:03}"),
            city,
            Level::Unit,
            Kind::University,
            name,
            &["高校"],
        ));
    }
    for number in 1..=ENTERPRISES {
        let (holder, place) = &holders[(number - 1) % holders.len()];
        units.push(spec(
            format!("ent-{number:03}"),
            holder,
            Level::Unit,
            Kind::Enterprise,
            format!("{place}演示企业{number:03}"),
            &["企业"],
        ));
    }
    for number in 1..=STATIONS {
        let (holder, place) = &holders[(number - 1) % holders.len()];
        units.push(spec(
            format!("stn-{number:03}"),
            holder,
            Level::Unit,
            Kind::Station,
            format!("{place}青春驿站{}号", (number - 1) / holders.len() + 1),
            &["青春驿站", "青年之声"],
        ));
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::tree::{ImportRow, plan_import};

    #[test]
    fn counts_match_the_seed() {
        let units = units();
        let count = |level: Level, kind: Option<Kind>| {
            units
                .iter()
                .filter(|u| u.level == level && kind.is_none_or(|k| u.kind == k))
                .count()
        };
        assert_eq!(units.len(), TOTAL);
        assert_eq!(count(Level::City, None), 12);
        assert_eq!(count(Level::County, None), 106);
        assert_eq!(count(Level::Unit, Some(Kind::University)), 83);
        assert_eq!(count(Level::Unit, Some(Kind::Enterprise)), 178);
        assert_eq!(count(Level::Unit, Some(Kind::Station)), 718);
        assert!(units.iter().any(|u| u.name == "西安市"));
        assert!(units.iter().any(|u| u.name == "韩城市"));
        assert!(units.iter().any(|u| u.name == "杨陵区"));
    }

    #[test]
    fn deterministic_and_valid() {
        assert_eq!(units(), units());
        let rows: Vec<ImportRow> = units()
            .into_iter()
            .enumerate()
            .map(|(index, spec)| ImportRow {
                line: index + 1,
                spec,
            })
            .collect();
        let plan = plan_import(&[], &rows).unwrap();
        assert_eq!(plan.inserts.len(), TOTAL);
        assert_eq!(plan.inserts[0].id, ROOT_ID);
    }
}
