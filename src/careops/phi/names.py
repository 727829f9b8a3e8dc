"""A small curated list of common US first and last names.

Why a list and not a model: the course runs offline and the scanner must be
predictable.  A capitalised first name followed by a capitalised last name
from these lists is reported as a possible name; anything else is not.
"""
from __future__ import annotations

FIRST_NAMES: frozenset[str] = frozenset(
    """
    James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth
    David Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen
    Christopher Lisa Daniel Nancy Matthew Betty Anthony Margaret Mark Sandra
    Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle
    Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah
    Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia
    Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna
    Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen
    Benjamin Samantha Samuel Katherine Gregory Christine Frank Debra Alexander
    Rachel Raymond Carolyn Patrick Janet Jack Catherine Dennis Maria Jerry
    Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry
    Virginia Peter Victoria Zachary Kelly Douglas Lauren Carlos Christina
    Juan Joan Luis Evelyn Wei Li Mohammed Fatima Ahmed Aisha Priya Raj
    Jane Jim Bob Tom Ann Sue Mike Joe Dave Chris Alex Sam
    """.split()
)

LAST_NAMES: frozenset[str] = frozenset(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
    Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson
    Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
    Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores
    Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts
    Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes
    Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper
    Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson
    Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez
    Castillo Sanders Patel Myers Long Ross Foster Jimenez Chen Wang Singh
    Khan Ali Kowalski Schmidt Murray Sullivan Doe Roe
    """.split()
)

# Textbook placeholders: reported, but as synthetic rather than PHI.
PLACEHOLDER_LAST_NAMES: frozenset[str] = frozenset({"Doe", "Roe"})
