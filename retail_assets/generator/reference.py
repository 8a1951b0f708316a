"""Reference data of the sample company: stores (with their terminals' quirks), the product catalog and people.

Everything here is small (a few thousand rows at most) and held in memory; the high-volume data (POS lines,
orders) is streamed by the other modules.
"""

from __future__ import annotations

import itertools
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ._common import random_instant, utc_at

STANDARD_COLUMNS = (
    "receipt_id",
    "line_no",
    "sold_at",
    "register_id",
    "cashier_id",
    "sku",
    "quantity",
    "unit_price",
    "discount",
    "loyalty_card",
    "payment_method",
)
LEGACY_COLUMNS = ("TICKET", "LINE", "DATE", "TIME", "ITEM", "QTY", "PRICE", "DISC", "CARD", "TYPE")

STORE_TIMEZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")

# (city, region) per store timezone; the order of STORE_TIMEZONES.
CITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "America/New_York": (
        ("Boston", "northeast"), ("New York", "northeast"), ("Philadelphia", "northeast"),
        ("Pittsburgh", "northeast"), ("Atlanta", "southeast"), ("Miami", "southeast"),
        ("Charlotte", "southeast"), ("Orlando", "southeast"), ("Detroit", "midwest"), ("Columbus", "midwest"),
    ),
    "America/Chicago": (
        ("Chicago", "midwest"), ("Minneapolis", "midwest"), ("St. Louis", "midwest"), ("Milwaukee", "midwest"),
        ("Kansas City", "midwest"), ("Dallas", "south"), ("Houston", "south"), ("Austin", "south"),
        ("New Orleans", "south"), ("Nashville", "southeast"),
    ),
    "America/Denver": (
        ("Denver", "mountain"), ("Colorado Springs", "mountain"), ("Salt Lake City", "mountain"),
        ("Albuquerque", "mountain"), ("Española", "mountain"), ("Boise", "mountain"),
    ),
    "America/Los_Angeles": (
        ("Los Angeles", "west"), ("San Francisco", "west"), ("San Diego", "west"), ("Sacramento", "west"),
        ("Seattle", "west"), ("Portland", "west"), ("Las Vegas", "west"),
    ),
}
STORE_SUFFIXES = ("Downtown", "Mall", "Outlet", "Plaza", "Station", "Market Square", "Riverside", "Uptown")

# category -> (sku prefix, price range in dollars, subcategory -> nouns, brands)
CATALOG: dict[str, tuple[str, tuple[int, int], dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    "Home & Bath": ("HB", (5, 80), {
        "Towels": ("Bath Towel", "Hand Towel", "Beach Towel"),
        "Candles": ("Scented Candle", "Pillar Candle", "Tealight Set"),
        "Storage": ("Storage Basket", "Drawer Organizer", "Laundry Hamper"),
    }, ("Linen & Co", "Casa Verde", "Hearthside")),
    "Kitchen": ("KT", (4, 150), {
        "Cookware": ("Frying Pan", "Saucepan", "Dutch Oven"),
        "Utensils": ("Spatula", "Whisk", "Chef's Knife"),
        "Tableware": ("Dinner Plate", "Mug", "Glass Tumbler"),
    }, ("ChefLine", "Copperleaf", "Mesa")),
    "Apparel": ("AP", (8, 120), {
        "T-Shirts": ("Crew Tee", "V-Neck Tee", "Pocket Tee"),
        "Outerwear": ("Rain Jacket", "Fleece", "Puffer Vest"),
        "Socks": ("Ankle Socks", "Wool Socks", "Crew Socks"),
    }, ("Northtrail", "Urban Thread", "Bluewater")),
    "Electronics": ("EL", (9, 250), {
        "Audio": ("Wireless Earbuds", "Bluetooth Speaker", "Headphones"),
        "Charging": ("USB-C Charger", "Power Bank", "Charging Cable"),
        "Accessories": ("Phone Case", "Screen Protector", "Laptop Sleeve"),
    }, ("Voltix", "Sonara", "Kinetik")),
    "Toys & Games": ("TG", (6, 90), {
        "Puzzles": ("Jigsaw Puzzle", "Brain Teaser"),
        "Board Games": ("Strategy Game", "Family Game", "Card Game"),
        "Plush": ("Teddy Bear", "Plush Fox"),
    }, ("Playforge", "Tumble", "BrightBox")),
    "Garden": ("GD", (3, 120), {
        "Planters": ("Terracotta Pot", "Hanging Planter"),
        "Tools": ("Hand Trowel", "Pruning Shears", "Garden Gloves"),
        "Seeds": ("Tomato Seeds", "Herb Seed Kit", "Wildflower Mix"),
    }, ("GreenThumb", "Fernwood")),
    "Beauty": ("BT", (4, 70), {
        "Skincare": ("Face Cream", "Cleanser", "Sunscreen SPF 30"),
        "Hair Care": ("Shampoo", "Conditioner", "Hair Oil"),
        "Fragrance": ("Eau de Parfum", "Body Mist"),
    }, ("Lumière", "Pure Petal", "Aveline")),
    "Grocery": ("GR", (2, 30), {
        "Coffee & Tea": ("Ground Coffee", "Espresso Beans", "Green Tea"),
        "Snacks": ("Trail Mix", "Dark Chocolate Bar", "Sea Salt Crackers"),
        "Pantry": ("Olive Oil", "Pasta", "Maple Syrup"),
    }, ("Hearth & Harvest", "Café Rojo", "Daily Grain")),
    "Sports": ("SP", (7, 200), {
        "Fitness": ("Yoga Mat", "Resistance Band", "Dumbbell Pair"),
        "Cycling": ("Bike Light", "Water Bottle", "Cycling Gloves"),
        "Camping": ("Headlamp", "Camping Stove", "Sleeping Bag"),
    }, ("Peakline", "Stride", "Basecamp")),
    "Stationery": ("ST", (2, 40), {
        "Notebooks": ("Dotted Notebook", "Spiral Notebook", "Planner"),
        "Writing": ("Gel Pen Set", "Fountain Pen", "Highlighters"),
    }, ("Papier", "Inkwell")),
}
ADJECTIVES = ("Classic", "Essential", "Premium", "Everyday", "Deluxe", "Compact", "Organic", "Signature", "Pro")
VARIANTS = ("Navy", "Black", "White", "Sage", "Large", "Small", "Twin Pack", "Family Size", "Red", "Grey")

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
    "Renée", "José", "Zoë", "Chloé", "André", "Noël", "Maria", "Wei", "Priya", "Aisha", "Mohammed", "Olga",
    "Liam", "Emma", "Noah", "Olivia", "Ethan", "Sofia", "Lucas", "Mia", "Mateo", "Hannah", "Kenji", "Fatima",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Nguyen", "Müller", "O'Brien", "Peña", "Kowalski", "Chen", "Patel", "Kim", "Dubois", "Rossi",
    "Novák", "Schmidt", "Okafor", "Haddad", "Ivanova", "Larsen", "Fernández", "Walker", "Young",
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com", "proton.me")
PHONE_FORMATS = (
    "({a}) {e}-{n}", "{a}-{e}-{n}", "{a}.{e}.{n}", "{a}{e}{n}", "+1{a}{e}{n}", "+1 {a}-{e}-{n}",
    "+1 ({a}) {e}-{n}", "1-{a}-{e}-{n}", "{a} {e} {n}", "{a}/{e}-{n}",
)


@dataclass(frozen=True, slots=True)
class Store:
    """A store, its row in ``stores.csv`` and the habits of its POS terminals."""

    index: int
    code: str
    name: str
    city: str
    region: str
    country: str
    timezone: str
    layout: str
    opened_on: date
    closed_on: date | None
    folder: str
    gzip: bool
    bom: bool
    crlf: bool
    column_order: tuple[int, ...]
    header_case: str
    firmware_from: date | None
    registers: tuple[str, ...]
    cashiers: tuple[str, ...]
    stock_products: tuple[int, ...]

    def is_open(self, day: date) -> bool:
        """Whether the store trades on ``day`` (``closed_on`` is the first day it no longer trades)."""
        return self.opened_on <= day and (self.closed_on is None or day < self.closed_on)

    def folder_on(self, day: date) -> str:
        """Sub-folder of the drop folder its uploader writes the day's files to ('' = the root)."""
        return self.folder.format(yyyy=f"{day:%Y}", mm=f"{day:%m}")

    def sales_name(self, day: date) -> str:
        """File name of the store's sales file for ``day``, as its layout names it."""
        if self.layout == "legacy":
            return f"{self.code}_{day:%d%m%Y}.txt"
        return f"sales_{self.code}_{day:%Y%m%d}.csv" + (".gz" if self.gzip else "")

    def stores_csv_row(self) -> list[str]:
        """The store's row in ``stores.csv``."""
        return [
            self.code, self.name, self.city, self.region, self.country, self.timezone, self.layout,
            self.opened_on.isoformat(), self.closed_on.isoformat() if self.closed_on else "",
        ]


@dataclass(slots=True)
class Product:
    """A catalog product; money in integer cents, timestamps naive UTC."""

    product_id: int
    sku: str
    name: str
    category: str
    subcategory: str
    brand: str
    unit_cost: int
    price: int
    is_active: bool
    updated_at: datetime
    old_price: int
    changed_at: datetime | None
    printed: tuple[str, str, str, str]
    # The catalog row before the period's one change (price, name, or a move to another category): the state
    # the platform saw when the period began (``generate --as-of-start``).
    old_name: str = ""
    old_updated_at: datetime | None = None
    old_category: str | None = None
    old_subcategory: str | None = None

    def price_on(self, day: date) -> int:
        """Shelf price on a store business day.

        Price changes take effect at 10:00 UTC, after every US store has closed the day before and before any
        opens, so one business day never sees two prices.
        """
        if self.changed_at is not None and day < self.changed_at.date():
            return self.old_price
        return self.price

    def price_at(self, instant: datetime) -> int:
        """Online price at a UTC instant."""
        if self.changed_at is not None and instant < self.changed_at:
            return self.old_price
        return self.price

    def row_at(self, instant: datetime) -> tuple[str, str, str, int, datetime]:
        """``(name, category, subcategory, price, updated_at)`` of the catalog row as it stood at ``instant``."""
        if self.changed_at is None or instant >= self.changed_at:
            return self.name, self.category, self.subcategory, self.price, self.updated_at
        return (self.old_name or self.name, self.old_category or self.category,
                self.old_subcategory or self.subcategory, self.old_price, self.old_updated_at or self.updated_at)


@dataclass(frozen=True, slots=True)
class Person:
    """A real-world customer; the CRM and the online shop each hold their own record(s) of them."""

    first_name: str
    last_name: str
    email: str
    phone_digits: str
    city: str
    region: str
    birth_date: date | None


def ascii_fold(text: str) -> str:
    """``Renée`` -> ``Renee``: how an email address would spell a name."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def messy_email(rng: random.Random, email: str) -> str:
    """The address as a person or a clerk typed it: case and stray spaces vary, the address does not."""
    r = rng.random()
    if r < 0.35:
        return email
    local, _, domain = email.partition("@")
    if r < 0.5:
        return email.upper()
    if r < 0.7:
        return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
    if r < 0.8:
        return " " + email
    if r < 0.9:
        return email + "  "
    return " " + local.capitalize() + "@" + domain + " "


def format_phone(rng: random.Random, digits: str) -> str:
    """A 10-digit US number in one of the many formats people type."""
    return rng.choice(PHONE_FORMATS).format(a=digits[:3], e=digits[3:6], n=digits[6:])


def make_stores(rng: random.Random, count: int, start: date, days: int, n_products: int) -> list[Store]:
    """The store network: codes S001.., about one in four on the legacy layout, four timezones.

    With four stores or more and a period of three days or more, one store closes mid-period.
    """
    zone_cities = {tz: rng.sample(cities, len(cities)) for tz, cities in CITIES.items()}
    legacy_count = count // 4 if count >= 4 else (1 if count >= 2 else 0)
    legacy = set(rng.sample(range(count), legacy_count))
    standard = [i for i in range(count) if i not in legacy]
    rng.shuffle(standard)
    quirk_rank = {store_index: k for k, store_index in enumerate(standard)}
    closing = standard[-1] if count >= 4 and days >= 3 else None
    firmware_day = start + timedelta(days=days // 3)
    stores = []
    for i in range(count):
        tz = STORE_TIMEZONES[i % len(STORE_TIMEZONES)]
        cities = zone_cities[tz]
        city, region = cities[(i // len(STORE_TIMEZONES)) % len(cities)]
        code = f"S{i + 1:03d}"
        suffix = rng.choice(STORE_SUFFIXES)
        # Head office names some stores "City, Area": a comma that stores.csv has to quote.
        name = f"{city}, {suffix}" if i % 5 == 2 else f"{city} {suffix}"
        folder = (f"{region}/{code}", f"{region}/{code}", f"{region}/{code}/{{yyyy}}/{{mm}}", "", f"{region}/{code}")[
            i % 5
        ]
        k = quirk_rank.get(i, -1)
        is_standard = k >= 0
        order = list(range(len(STANDARD_COLUMNS)))
        if is_standard and k % 4 == 3:
            rng.shuffle(order)
        stores.append(
            Store(
                index=i,
                code=code,
                name=name,
                city=city,
                region=region,
                country="US",
                timezone=tz,
                layout="standard" if is_standard else "legacy",
                opened_on=date(2012, 1, 1) + timedelta(days=rng.randrange(12 * 365)),
                closed_on=start + timedelta(days=days // 2) if i == closing else None,
                folder=folder,
                gzip=is_standard and k % 3 == 1,
                bom=is_standard and k % 3 == 2,
                crlf=(not is_standard) or k % 2 == 1,
                column_order=tuple(order),
                header_case=("lower", "upper", "lower", "title")[k % 4] if is_standard else "upper",
                firmware_from=firmware_day if is_standard and k % 3 == 0 and k > 0 else None,
                registers=tuple(f"R{r:02d}" for r in range(1, rng.randint(3, 8))),
                cashiers=tuple(f"E{n:04d}" for n in rng.sample(range(1000, 10000), rng.randint(5, 14))),
                stock_products=tuple(rng.sample(range(n_products), min(n_products, rng.randint(30, 50)))),
            )
        )
    return stores


def make_products(rng: random.Random, count: int, start: date, days: int) -> list[Product]:
    """The master catalog. About 6% of active products change price (some also name) inside the period."""
    categories = list(CATALOG)
    numbers = rng.sample(range(1, 1_000_000), count)
    period_start = utc_at(start)
    products = []
    for product_id, number in enumerate(numbers, start=1):
        category = categories[rng.randrange(len(categories))]
        prefix, (low, high), subcategories, brands = CATALOG[category]
        subcategory = rng.choice(list(subcategories))
        brand = rng.choice(brands)
        name = f"{brand} {rng.choice(ADJECTIVES)} {rng.choice(subcategories[subcategory])}"
        if rng.random() < 0.6:
            name += f", {rng.choice(VARIANTS)}"
        price = rng.randint(low, high) * 100 - rng.choice((1, 1, 1, 51, 0))
        price = max(price, 99)
        unit_cost = min(price - 1, int(price * rng.uniform(0.35, 0.7)))
        sku = f"{prefix}-{number:06d}"
        is_active = rng.random() >= 0.03
        updated_at = random_instant(rng, datetime(2023, 1, 1), period_start - timedelta(days=1))
        changed_at = None
        old_price = price
        old_name, old_updated_at = name, updated_at
        if is_active and days >= 2 and rng.random() < 0.06:
            changed_at = utc_at(start + timedelta(days=rng.randint(1, days - 1)), 10)
            old_price = max(99, int(price * rng.choice((0.8, 0.85, 0.9, 1.1, 1.15, 1.2))) // 10 * 10 + 9)
            if old_price == price:
                old_price = price + 100
            unit_cost = min(unit_cost, old_price - 1)
            updated_at = changed_at
            if rng.random() < 0.3:
                name += " (New)"
        printed = (sku, sku.lower(), sku.replace("-", ""), f" {sku} ")
        products.append(
            Product(product_id, sku, name, category, subcategory, brand, unit_cost, price, is_active,
                    updated_at, old_price, changed_at, printed, old_name, old_updated_at)
        )
    return products


# Where a catalog re-organisation may move a subcategory: (category, subcategory) -> the category it joins.
CATEGORY_MOVES = {
    ("Kitchen", "Tableware"): "Home & Bath",
    ("Garden", "Seeds"): "Grocery",
    ("Sports", "Cycling"): "Outdoor",
    ("Home & Bath", "Candles"): "Home Fragrance",
    ("Electronics", "Charging"): "Accessories & Power",
}


def move_categories(rng: random.Random, catalog: list[Product], start: date, days: int) -> int:
    """Head office re-organises the catalog once during the period: the active products of one subcategory join
    another category at 10:00 UTC of a day after the first (before any store opens). A product whose price
    changes in the period keeps its category, so every product changes at most once. Returns how many moved.

    Uses its own random stream, so the catalog, the prices and everything drawn from them stay as they were.
    """
    if days < 2:
        return 0
    (category, subcategory), target = rng.choice(sorted(CATEGORY_MOVES.items()))
    moved_at = utc_at(start + timedelta(days=rng.randint(1, days - 1)), 10)
    moved = 0
    for product in catalog:
        if (product.category, product.subcategory) != (category, subcategory):
            continue
        if not product.is_active or product.changed_at is not None:
            continue
        product.old_category, product.old_subcategory = product.category, product.subcategory
        product.category = target
        product.old_updated_at, product.updated_at = product.updated_at, moved_at
        product.changed_at = moved_at
        moved += 1
    return moved


def make_unknown_skus(rng: random.Random, known: set[str], count: int = 20) -> list[str]:
    """SKUs the terminals scan that are in no catalog (local items, typos); their prefixes are not in use."""
    skus: list[str] = []
    while len(skus) < count:
        sku = f"{rng.choice(('ZZ', 'QX', 'XX'))}-{rng.randrange(1_000_000):06d}"
        if sku not in known and sku not in skus:
            skus.append(sku)
    return skus


def make_people(rng: random.Random, count: int, stores: list[Store]) -> list[Person]:
    """``count`` distinct people with unique canonical (lower-case) email addresses."""
    seen: set[str] = set()
    people = []
    home_cities = [(s.city, s.region) for s in stores]
    counter = itertools.count(1)
    while len(people) < count:
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        local = ascii_fold(f"{first}.{last}").lower().replace("'", "")
        if rng.random() < 0.7:
            local += str(rng.randint(1, 999))
        email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        if email in seen:
            email = f"{local}.{next(counter)}@{rng.choice(EMAIL_DOMAINS)}"
            if email in seen:
                continue
        seen.add(email)
        city, region = rng.choice(home_cities)
        birth = None if rng.random() < 0.08 else date(1950, 1, 1) + timedelta(days=rng.randrange(55 * 365))
        phone = f"{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randrange(10_000):04d}"
        people.append(Person(first, last, email, phone, city, region, birth))
    return people
